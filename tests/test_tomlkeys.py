"""The TOML key locator behind the workloads' error lines (a documentation audit found the network
checks naming the first line with the same last key: ``periphery.adc.bits`` at ``dac = { bits = 8 }``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from circuitkit.tomlkeys import key_line

NETWORK = (Path(__file__).resolve().parents[1] / "examples" / "digits" / "network.toml").read_text()


def _line_of(text: str, needle: str) -> int:
    hits = [k for k, ln in enumerate(text.splitlines(), 1) if needle in ln]
    assert len(hits) == 1, needle
    return hits[0]


@pytest.mark.parametrize("key, needle", [
    ("periphery.adc.bits", "adc     = {"), ("periphery.dac.bits", "dac     = {"),
    ("device.read_noise.sigma", "read_noise  ="), ("device.variability.seed", "variability ="),
    ("device.params.roff", "params = {"), ("layers.1.activation", 'activation = "argmax"'),
    ("layers.0.weights", '"weights.npz:w1"'), ("tile.cols", "cols = 64"), ("name", 'name = "digits-mlp"'),
])
def test_keys_of_the_shipped_network(key, needle):
    assert key_line(NETWORK, key) == _line_of(NETWORK, needle)


TRICKY = '''[a]
b.c = 1   # a comment with [x] = 2 and c = 3
"q k" = { x = [1, 2,
  3], y = { z = "s#{ c = 5" } }
[[l]]
n = 1
[[l]]
n = 2
m = """multi
k = 3
"""
k = 4
'''


@pytest.mark.parametrize("key, line", [("a.b.c", 2), ("a.q k.x", 3), ("a.q k.y.z", 4), ("l.0.n", 6),
                                       ("l.1.n", 8), ("l.1.m", 9), ("l.1.k", 12), ("a", 1),
                                       ("a.b.missing", 2), ("l.1.missing", 7), ("nowhere.x", None)])
def test_dotted_inline_quoted_arrays_of_tables_strings_and_comments(key, line):
    assert key_line(TRICKY, key) == line


def test_a_network_check_names_the_line_of_its_key():
    from circuitkit.workloads.networks.spec import NetworkError, load_network
    path = Path(__file__).resolve().parents[1] / "examples" / "digits" / "network.toml"
    for key, value, needle in (("periphery.adc.bits", "40", "adc     = {"),
                               ("device.read_noise.sigma", "-1", "read_noise  =")):
        with pytest.raises(NetworkError) as exc:
            load_network(path, {key: value})
        assert exc.value.location.parameter == key
        assert exc.value.location.line == _line_of(NETWORK, needle)
