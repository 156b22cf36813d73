"""A description can never add netlist lines or ngspice control commands.

ngspice's control language runs shell commands (`shell`, `!`), so every way a
value from a description reaches the netlist is attacked here end to end:
names, strings, numbers, --set overrides, included files and model paths.
The rendered deck must keep exactly one `.control` block, the one circuitkit
writes, and no line a description did not earn.
"""
from __future__ import annotations

import pytest

from circuitkit.engines import write_netlist
from circuitkit.errors import CircuitkitError
from circuitkit.workflow import load

BASE = 'title "t"\nsource v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k\nanalysis op()\nrecord v(a)\n'


def _deck(tmp_path, text: str, overrides=None) -> str:
    f = tmp_path / "attack.xbar"
    f.write_text(text)
    _, circuit = load(f, overrides=overrides)
    out = write_netlist(circuit, tmp_path / "deck.cir")
    return out.read_text()


def _control_blocks(deck: str) -> list[list[str]]:
    blocks, cur = [], None
    for line in deck.splitlines():
        low = line.strip().lower()
        if low.startswith(".control"):
            cur = []
        elif low.startswith(".endc"):
            blocks.append(cur)
            cur = None
        elif cur is not None:
            cur.append(low)
    return blocks


def test_clean_deck_has_one_control_block_without_shell(tmp_path):
    blocks = _control_blocks(_deck(tmp_path, BASE))
    assert len(blocks) == 1
    assert all(cmd.split()[0] in ("pre_osdi", "run", "write", "quit") for cmd in blocks[0] if cmd and not cmd.startswith("*"))


@pytest.mark.parametrize("text", [
    'title "x"\nsource v1 (a, 0) dc(0.1)\n.control\nshell touch /tmp/ck_pwned\n.endc\nanalysis op()\n',
    'title "x\\n.control"\nsource v1 (a, 0) dc(0.1)\nanalysis op()\n',
    'source v1 (a;shell, 0) dc(0.1)\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nresistor r1 (a b, 0) 1k\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) 1k $ shell\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nresistor r1 (a, 0) "1k\nshell ls"\nanalysis op()\n',
    'source v-1 (a, 0) dc(0.1)\nanalysis op()\n',
    'source v1 (a, 0) dc(0.1)\nrecord v(a), i(v1 shell)\nanalysis op()\n',
])
def test_injection_attempts_in_descriptions_are_refused(tmp_path, text):
    with pytest.raises(CircuitkitError):
        _deck(tmp_path, text)
    assert not (tmp_path / "deck.cir").exists()


def test_title_with_control_words_stays_one_comment_line(tmp_path):
    deck = _deck(tmp_path, BASE.replace('title "t"', 'title ".endc .control shell rm -rf ~ ; quit"'))
    assert len(_control_blocks(deck)) == 1
    titled = [line for line in deck.splitlines() if "shell rm" in line]
    assert titled and all(line.startswith("*") for line in titled)


@pytest.mark.parametrize("value", ["1k\n.control", "1k; shell ls", "1k .endc", "1k\nresistor r9 (a, 0) 1"])
def test_set_overrides_cannot_inject(tmp_path, value):
    text = BASE.replace("resistor r1 (a, 0) 1k", "param rr = 1k\nresistor r1 (a, 0) rr")
    with pytest.raises(CircuitkitError):
        _deck(tmp_path, text, overrides={"rr": value})


def test_included_file_goes_through_the_same_checks(tmp_path):
    (tmp_path / "evil.xbar").write_text("resistor r2 (a, 0) 1k\n.control\n")
    with pytest.raises(CircuitkitError) as exc:
        _deck(tmp_path, 'include "evil.xbar"\n' + BASE)
    assert "evil.xbar:2" in str(exc.value)


def test_unsafe_osdi_path_is_refused_by_the_renderer(tmp_path):
    # compiled models live in the cache (a safe path); the renderer still re-checks every path it writes
    from circuitkit.netlist import render_text
    _, circuit = load(_write(tmp_path, BASE.replace("resistor r1 (a, 0) 1k", "device m1 (a, 0) vteam()")))
    with pytest.raises(CircuitkitError):
        render_text(circuit, {"vteam": tmp_path / "x y;shell ls.osdi"})


def _write(tmp_path, text):
    f = tmp_path / "ok.xbar"
    f.write_text(text)
    return f
