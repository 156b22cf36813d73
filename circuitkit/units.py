"""SI numbers as SPICE writes them: ``1k``, ``2.5m``, ``10n``, ``1f``, ``3meg``.

``parse_si`` reads them (suffixes are case-insensitive like SPICE, trailing
unit letters such as ``ohm`` or ``V`` after the suffix are ignored, as SPICE
does); ``format_si`` writes a float so ngspice reads back the same double.
"""
from __future__ import annotations

import re

SUFFIXES = {
    "t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6,
    "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15, "a": 1e-18,
}

_NUMBER = re.compile(
    r"^(?P<num>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?P<suffix>meg|mil|[tgkmunpfa])?(?P<unit>[a-zA-Z]*)$",
    re.IGNORECASE,
)


def parse_si(text: str) -> float:
    """Parse ``text`` as a SPICE number with an optional SI suffix.

    >>> parse_si("2.5m"), parse_si("1meg"), parse_si("10nF")
    (0.0025, 1000000.0, 1e-08)
    """
    m = _NUMBER.match(text.strip())
    if not m:
        raise ValueError(f"not a number: {text!r}")
    value = float(m.group("num"))
    suffix = m.group("suffix")
    if suffix:
        value *= SUFFIXES[suffix.lower()]
    return value


def format_si(value: float) -> str:
    """Format a float exactly (round-trip repr), the way netlists want it."""
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"cannot write {value} into a netlist")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)
