"""Every error circuitkit raises on purpose derives from :class:`CircuitkitError`.

Errors that point at user input carry a :class:`Location` (file, line, column
or parameter name) so the message says where the problem is.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def printable(text: str, limit: int | None = None, keep_newlines: bool = False) -> str:
    """``text`` safe to echo to a terminal: every non-printable character (ESC, CR, NUL, form feed,
    U+2028, bidirectional controls, ...) is written as a Python escape (``\\x1b``, ``\\u2028``), and a
    text longer than ``limit`` characters is cut with a note of its length. ``keep_newlines`` keeps
    ``\\n`` (an error message's own line structure)."""
    text = str(text)
    cut = ""
    if limit is not None and len(text) > limit:
        cut = f"... ({len(text):,} characters)"
        text = text[:limit]
    if not text.isprintable():
        out = []
        for ch in text:
            if ch.isprintable() or (keep_newlines and ch == "\n"):
                out.append(ch)
            else:
                out.append(repr(ch)[1:-1] if ch != "\\" else ch)
        text = "".join(out)
    return text + cut


#: at most this many characters of a file name or parameter name are echoed in a message
MAX_ECHO = 200


@dataclass(frozen=True)
class Location:
    """Where in user input a problem is: a file and position, or a parameter."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    parameter: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            where = printable(self.file, MAX_ECHO)
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.parameter is not None:
            parts.append(f"parameter '{printable(self.parameter, MAX_ECHO)}'")
        return ", ".join(parts) if parts else "<unknown location>"


class CircuitkitError(Exception):
    """Base class of circuitkit's own errors."""


class UsageError(CircuitkitError):
    """A command line that cannot be run as given (the CLI reports it and exits with status 2)."""


class LocatedError(CircuitkitError):
    """An error in user input with the place it was found."""

    def __init__(self, message: str, location: Location | None = None):
        message = printable(message)      # one line: a snippet or a name never drives the terminal or forges a line
        self.message = message
        self.location = location or Location()
        super().__init__(f"{self.location}: {message}" if location else message)


class DescriptionError(LocatedError):
    """A description (.xbar) that cannot be parsed or does not make a valid circuit."""


class ParameterError(LocatedError):
    """A device or circuit parameter that is unknown or outside its range."""


class CompileError(LocatedError):
    """OpenVAF failed to compile a Verilog-A file; location names the .va line."""

    def __init__(self, message: str, location: Location | None = None, compiler_output: str = ""):
        super().__init__(message, location)
        self.compiler_output = compiler_output


class ToolchainError(CircuitkitError):
    """ngspice, libngspice or the OpenVAF compiler is missing or unusable."""


class SpiceError(CircuitkitError):
    """An ngspice run failed.

    ``kind`` is one of: ``convergence``, ``timestep``, ``unknown_device``,
    ``model_load``, ``timeout``, ``syntax``, ``failed``. ``log_lines`` holds the
    lines of the ngspice log that explain the failure; ``log`` the whole log.
    """

    KINDS = ("convergence", "timestep", "unknown_device", "model_load", "timeout", "syntax", "failed")

    def __init__(self, kind: str, message: str, log_lines: list[str] | None = None,
                 log: str = "", netlist: Path | None = None):
        if kind not in self.KINDS:
            raise ValueError(f"unknown SpiceError kind {kind!r}")
        self.kind = kind
        self.log_lines = list(log_lines or [])
        self.log = log
        self.netlist = netlist
        text = f"ngspice {kind}: {message}"
        if self.log_lines:
            text += "\n  " + "\n  ".join(self.log_lines[:20])
        super().__init__(text)


class ConvergenceError(CircuitkitError):
    """The behavioural engine's Newton iteration did not converge."""

    def __init__(self, message: str, time: float | None = None):
        self.time = time
        super().__init__(message if time is None else f"{message} (at t = {time:.6g} s)")
