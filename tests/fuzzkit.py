"""Fuzzing descriptions: generated and mutated ``.xbar`` files through ``load`` and the renderer.

Three generators, all seeded (a case is reproducible from its number):

* ``grammar``: random descriptions from the language's own statements, with
  values drawn from a pool of hostile ones (huge, tiny, zero, negative,
  non-finite, deep nesting, long sums, odd strings and paths, names differing
  only in case, reserved names);
* ``mutate``: byte and token mutations of the shipped ``testbenches/*.xbar``
  and ``sweeps/*.xbar`` (flip, delete, duplicate, splice hostile tokens, swap
  numbers for extremes);
* ``override``: the shipped files with random ``--set`` values.

Each case is written into a scratch directory (with the data files the
testbenches need) and goes through :func:`circuitkit.workflow.load` and
:func:`circuitkit.netlist.render.render_netlist` with dummy OSDI paths. The
verdict of a case (:func:`run_case`):

* ``ok`` (loaded and rendered, every netlist line one the templates write) or
  ``refused`` (a :class:`~circuitkit.errors.CircuitkitError` with a location:
  a file line, or a parameter);
* ``traceback`` (any other exception), ``unlocated`` (a refusal without a
  location), ``slow`` (more than ``SLOW_S``), ``injected`` (a netlist line no
  template writes), ``leak`` (an error quoting a secret planted in the
  environment or the first line of ``/etc/passwd``).

``python tests/fuzzkit.py --cases 100000`` (``make fuzz``) runs chunks in
subprocesses (a hung chunk is killed and reported) and prints a report.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted(p for p in list((ROOT / "testbenches").glob("*.xbar")) + list((ROOT / "sweeps").glob("*.xbar")))
DATA = sorted((ROOT / "testbenches").glob("*.csv"))
SLOW_S = 5.0
SECRET = "CKFUZZ_SECRET_7f3a9"

# -- hostile values ---------------------------------------------------------------------------
NUMBERS = ["0", "1", "-1", "2", "3", "4", "8", "0.5", "1k", "10n", "1e-300", "1e300", "1e999", "-1e300", "inf",
           "-inf", "1e-18", "65536", "65537", "1e6", "2.5", "1meg", "100f", "0.2", "9223372036854775808",
           "1e308*10", "exp(1000)", "floor(inf)", "0 ** -1", "(-8) ** 0.5", "1/0", "sqrt(-1)", "log(0)",
           "10 ** 10 ** 10", "round(1e300)", "abs(-3)", "max(1, 2)", "min()", "pi"]
BENIGN = ["0", "1", "2", "4", "8", "0.5", "0.2", "1k", "10n", "100f", "2.5", "1u", "20n", "3"]
NAMES = ["a", "b", "in", "IN", "out", "x", "xb", "xb_wl_0", "gnd", "GND", "v1", "V1", "r1", "m1", "am_r1", "n_1",
         "A" * 70, "shell", "control", "end", "x0", "rw", "vread", "float", "differential", "left", "ideal"]
STRINGS = ['"x.npy"', '"inputs_32.csv"', '"/dev/zero"', '"/dev/urandom"', '"/proc/self/environ"', '"/etc/passwd"',
           '"/etc/shadow"', '"../../etc/passwd"', '"a\x00b.csv"', '"nope.xbar"', '"sub.xbar"', '"self.xbar"',
           '"data3d.npy"', '"huge.npy"', '"bad.csv"', '"w.npy"', '"."', '""', '".control"',
           '"x\\n.control"', '"$ shell"']
TOKENS = ["(", ")", "[", "]", "{", "}", ",", ";", "=", "+", "-", "*", "/", "**", "#", "\\\n", "\n", '"', "\x00",
          "\xff", "\u00e9", ".control\nshell touch /tmp/ckfuzz\n.endc", "$", "!", "inf", "1e999", "0", "-1e300",
          "fill(1e6, 1)", "[" * 80, "]" * 80, "+1" * 600, "float", "xb_wl_0", "IN", "in"]
CALLS = {
    "waveform": ["dc({n})", "sine(offset = {n}, amplitude = {n}, freq = {n})", "sine({n}, {n}, {n})",
                 "pulse(v1 = {n}, v2 = {n}, width = {n}, rise = {n}, period = {n})", "pwl([{n}, {n}], [{n}, {n}])",
                 "pwl([0, 1n, 1n], [0, 1, 2])", "{n}", "noise({n})"],
    "device": ["vteam()", "vteam(x0 = {n})", "vteam(ron = {n}, roff = {n})", "linear_drift()", "volatile()",
               "yakopcic(x0 = {n})", "stanford_pku()", "selector(vth = {n})", "unknown_model()", "vteam",
               "vteam({n})"],
    "state": ["{n}", "constant({n})", "uniform({n}, {n}, seed = {n})", "file({s})",
              "weights({s}, mapping = differential, gmin = {n}, gmax = {n})",
              "weights({s}, mapping = single, gmin = 1u, gmax = 100u)", "file({s}, {n})"],
}
SETTINGS = {
    "crossbar": {"rows": "{n}", "cols": "{n}", "cell": ["1R", "1T1R", "1S1R", "2T2R", '"1R"', "{n}"],
                 "device": "device", "selector": ["selector()", "selector(vth = {n})", "vteam()"],
                 "transistor": ["nmos()", "nmos(vto = {n}, kp = {n})", "pmos(w = {n})", "bjt()"],
                 "state": "state", "variability": ["lognormal(ron = {n}, seed = {n})", "lognormal(x0 = {n})",
                                                   "lognormal(seed = {n})"],
                 "faults": ["stuck(on = {n}, off = {n}, seed = {n})", "stuck(on = 0.5, off = 0.6)"]},
    "wires": {"r_row": "{n}", "r_col": "{n}", "c_row": "{n}", "c_col": "{n}",
              "drive": ["left", "right", "both", "up", "{n}"], "sense": ["bottom", "top", "both", "{n}"]},
    "driver": {"r_out": "{n}", "rise": "{n}", "fall": "{n}", "vgate": "{n}",
               "dac": ["dac(bits = {n}, vmin = {n}, vmax = {n})", "dac(bits = 8, vmax = 1)", "dac()"]},
    "sense": {"tia": ["ideal(rf = {n})", "opamp(rf = {n}, gain = {n}, gbw = {n})", "ideal", "opamp", "magic()"],
              "adc": ["adc(bits = {n}, vmin = {n}, vmax = {n})", "adc(bits = 8, vmin = -1, vmax = 1, sample = {n})"]},
    "stimulus": {"duration": "{n}", "read": ["{l}", "fill({n}, {n})", "linspace({n}, {n}, {n})",
                                             "rand({n}, {n}, {n}, seed = {n})", "read({l}, select = {l}, sense = {l})",
                                             "[{n}, float, {n}]"],
                 "reads": ["file({s})"],
                 "program": ["pulses(row = {n}, col = {n}, amplitude = {n}, width = {n}, count = {n}, gap = {n}, "
                             "scheme = {w})", "pulses(row = {l}, col = {l}, amplitude = 1, width = 10n)"]},
}


class _Gen:
    def __init__(self, rng: random.Random):
        self.r = rng

    def n(self, depth=0) -> str:
        r = self.r
        k = r.random()
        if k < 0.35 or depth > 2:
            return r.choice(BENIGN)
        if k < 0.55:
            return r.choice(NUMBERS)
        if k < 0.7:
            return r.choice(NAMES[:12] + ["rw", "vread", "p0", "p1"])
        if k < 0.85:
            op = r.choice([" + ", " - ", " * ", " / ", " ** "])
            return f"({self.n(depth + 1)}{op}{self.n(depth + 1)})"
        if k < 0.9:
            return "+".join(["1"] * r.choice([10, 500, 1100]))
        if k < 0.93:
            d = r.choice([10, 70, 500])
            return "(" * d + "1" + ")" * d
        return f"{r.choice(['sqrt', 'exp', 'log', 'floor', 'sin', 'abs'])}({self.n(depth + 1)})"

    def l(self) -> str:  # noqa: E743 - list
        r = self.r
        k = r.random()
        if k < 0.6:
            return "[" + ", ".join(self.n() for _ in range(r.choice([1, 2, 3, 4, 8]))) + "]"
        if k < 0.7:
            d = r.choice([5, 80, 500])
            return "[" * d + "]" * d
        if k < 0.8:
            return "[]"
        return f"fill({r.choice(['4', '8', '2', '1e6', '1e7', 'inf', '0'])}, {self.n()})"

    def fmt(self, template: str) -> str:
        out = template
        while "{" in out:
            for key, fn in (("{n}", self.n), ("{l}", self.l), ("{s}", lambda: self.r.choice(STRINGS)),
                            ("{w}", lambda: self.r.choice(["v2", "v3", "float", "v4", "1"]))):
                if key in out:
                    out = out.replace(key, fn(), 1)
                    break
            else:
                break
        return out

    def value_for(self, spec) -> str:
        if isinstance(spec, list):
            return self.fmt(self.r.choice(spec))
        if spec in CALLS:
            return self.fmt(self.r.choice(CALLS[spec]))
        return self.fmt(spec)

    def description(self) -> str:
        r = self.r
        lines = []
        if r.random() < 0.5:
            lines.append(f'title "{r.choice(["t", "x" * 2000, ".endc", "é", "a; shell"])}"')
        for i in range(r.choice([0, 1, 2, 3])):
            lines.append(f"param p{i} = {self.n()}")
        if r.random() < 0.3:
            lines.append(f"param rw = {self.n()}")
        if r.random() < 0.15:
            lines.append(f"include {r.choice(STRINGS)}")
        nodes = ["a", "b", "in", "IN", "0", "gnd", "xb_wl_0", "c"]
        for i in range(r.choice([0, 0, 1, 2, 4])):
            kind = r.choice(["source", "resistor", "capacitor", "device"])
            spec = {"source": "waveform", "device": "device"}.get(kind, "{n}")
            name = r.choice(NAMES) if r.random() < 0.3 else f"{kind[0]}{i}"
            lines.append(f"{kind} {name} ({r.choice(nodes)}, {r.choice(nodes)}) {self.value_for(spec)}")
        if r.random() < 0.6:
            block = []
            for sec, keys in SETTINGS.items():
                if sec != "crossbar" and r.random() < 0.5:
                    continue
                settings = []
                for key, spec in keys.items():
                    if key in ("rows", "cols") and sec == "crossbar" and r.random() < 0.7:
                        settings.append(f"{key} = {r.choice(['2', '3', '4', '8'])}")
                    elif r.random() < 0.35:
                        settings.append(f"{key} = {self.value_for(spec)}")
                if r.random() < 0.1:
                    settings.append(f"{r.choice(NAMES)} = {self.n()}")
                head = {"crossbar": "crossbar xb", "driver": f"driver {r.choice(['rows', 'cols', 'both'])}",
                        "sense": "sense cols", "wires": "wires", "stimulus": "stimulus"}[sec]
                sep = "; " if r.random() < 0.5 else "\n    "
                block.append(f"{head} {{ {sep.join(settings)} }}" if sep == "; " else
                             f"{head} {{\n    {sep.join(settings)}\n}}")
            lines.extend(block)
        if r.random() < 0.85:
            lines.append(r.choice(["analysis op()", f"analysis tran(step = {self.n()})",
                                   f"analysis tran(step = {self.n()}, stop = {self.n()})", "analysis ac()",
                                   "analysis tran()"]))
        if r.random() < 0.5:
            sig = [r.choice(["column_currents", "tia_out", "adc_codes", "states", "line_voltages",
                             "supply_currents", "bogus", f"v({r.choice(nodes)})", f"i({r.choice(NAMES)})",
                             f"x({r.choice(NAMES)})", "v(a, b)"]) for _ in range(r.choice([1, 2, 3]))]
            lines.append("record " + ", ".join(sig))
        r.shuffle(lines) if r.random() < 0.2 else None
        return "\n".join(lines) + "\n"


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3, 5])):
        k = rng.random()
        pos = rng.randrange(len(b) + 1)
        if k < 0.2 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256) if rng.random() < 0.2 else rng.randrange(32, 127)
        elif k < 0.35 and b:
            del b[pos:pos + rng.choice([1, 2, 5, 20])]
        elif k < 0.45 and b:
            span = b[pos:pos + rng.choice([5, 40, 200])]
            b[pos:pos] = span * rng.choice([1, 2, 50])
        elif k < 0.75:
            b[pos:pos] = rng.choice(TOKENS).encode("utf-8", "surrogateescape") if rng.random() < 0.9 else b"\xff\xfe"
        else:  # token swap: a number or a name for a hostile one
            text = bytes(b).decode("utf-8", "replace")
            nums = list(re.finditer(r"(?<![A-Za-z_])\d[\w.]*", text))
            if nums:
                m = rng.choice(nums)
                text = text[:m.start()] + rng.choice(NUMBERS) + text[m.end():]
            b = bytearray(text.encode("utf-8"))
    return bytes(b)


def make_case(seed: int) -> tuple[str, bytes, dict[str, str]]:
    """(kind, description bytes, --set overrides) of case ``seed``."""
    rng = random.Random(seed)
    kind = ("grammar", "mutate", "override")[seed % 3]
    if kind == "grammar":
        return kind, _Gen(rng).description().encode("utf-8", "surrogateescape"), {}
    src = rng.choice(SEEDS).read_bytes()
    if kind == "mutate":
        return kind, _mutate(rng, src), {}
    params = re.findall(rb"^param\s+(\w+)", src, re.M) or [b"rw"]
    overrides = {rng.choice(params).decode(): rng.choice(NUMBERS + ["1k\n.control", "1; shell", "[1, 2]", "",
                                                                     "rw", "{1}", "x" * 20000, "fill(1e6, 1)"])}
    if rng.random() < 0.2:
        overrides["nosuch"] = "1"
    return kind, src, overrides


def scratch() -> Path:
    """A directory with the data files descriptions may name (good and hostile)."""
    import numpy as np
    d = Path(tempfile.mkdtemp(prefix="ckfuzz-"))
    for f in DATA:
        shutil.copy(f, d / f.name)
    np.save(d / "x.npy", np.full((4, 4), 0.5))
    np.save(d / "w.npy", np.full((4, 2), 0.5))
    np.save(d / "data3d.npy", np.zeros((2, 2, 2)))
    (d / "bad.csv").write_text("1,2\n3,oops\n")
    with open(d / "huge.npy", "wb") as fh:      # a header promising 1e12 values
        fh.write(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
                 + b" " * 44 + b"\n")
    (d / "sub.xbar").write_text("param sub = 1\n")
    (d / "self.xbar").write_text('include "self.xbar"\n')
    return d


_TEMPLATE_LINE = [
    re.compile(r"^$"),
    re.compile(r"^\*[ -~]*$"),                                               # comments: printable ASCII
    re.compile(r"^[RVCNMEGIBFH][A-Za-z0-9_]+( [A-Za-z0-9_.+\-=(),]+)*$"),  # element lines
    re.compile(r"^\+( [A-Za-z0-9_.+\-=(),]+)+$"),                           # continuations
    re.compile(r"^\.(model|options|save|tran|op|ic|nodeset|temp|end)( [A-Za-z0-9_.+\-=(),]+)*$"),
]
_CONTROL = {"run", "quit", "write circuitkit.raw"}


def netlist_problems(text: str, osdi_paths: set[str]) -> list[str]:
    """Lines of a rendered deck that no template writes (one ``.control`` block of known commands)."""
    bad, in_control, blocks = [], False, 0
    for line in text.splitlines():
        if line == ".control":
            in_control, blocks = True, blocks + 1
            continue
        if line == ".endc":
            in_control = False
            continue
        if in_control:
            ok = line in _CONTROL or (line.startswith("pre_osdi ") and line[9:] in osdi_paths) or line.startswith("*")
        else:
            ok = any(p.match(line) for p in _TEMPLATE_LINE)
        if not ok:
            bad.append(line[:120])
    if blocks != 1:
        bad.append(f"{blocks} .control blocks")
    return bad


class _Slow(Exception):
    pass


def _alarm(signum, frame):
    raise _Slow()


def run_case(seed: int, workdir: Path, timeout: float = 2 * SLOW_S) -> dict:
    """Run case ``seed``; returns ``{"seed", "kind", "verdict", "detail", "seconds"}``."""
    kind, data, overrides = make_case(seed)
    path = workdir / f"case{seed}.xbar"
    path.write_bytes(data)
    t0 = time.perf_counter()
    old = signal.signal(signal.SIGALRM, _alarm) if timeout else None
    if timeout:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        verdict, detail = _run(path, overrides)
    except _Slow:                         # also when the alarm rings while an error is being handled
        verdict, detail = "slow", f"over {timeout} s"
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        path.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    if verdict in ("ok", "refused") and seconds > SLOW_S:
        verdict, detail = "slow", f"{seconds:.1f} s"
    return {"seed": seed, "kind": kind, "verdict": verdict, "detail": detail, "seconds": round(seconds, 4)}


def _run(path: Path, overrides: dict) -> tuple[str, str]:
    from circuitkit.errors import CircuitkitError, LocatedError
    from circuitkit.netlist.render import render_netlist
    from circuitkit.workflow import load
    verdict, detail = "ok", ""
    try:
        _, circuit = load(path, overrides=overrides)
        osdi = {m.name: f"/fuzz/osdi/{m.name}.osdi" for m in circuit.device_models()}
        buf = io.StringIO()
        render_netlist(circuit, osdi, buf)
        problems = netlist_problems(buf.getvalue(), set(osdi.values()))
        if problems:
            verdict, detail = "injected", "; ".join(problems[:3])
    except _Slow:
        raise
    except CircuitkitError as exc:
        text = str(exc)
        loc = getattr(exc, "location", None)
        located = isinstance(exc, LocatedError) and loc is not None and (
            loc.line is not None or loc.parameter is not None)
        verdict, detail = ("refused" if located else "unlocated"), f"{type(exc).__name__}: {text[:300]}"
        if SECRET in text or _PASSWD_HEAD and _PASSWD_HEAD in text:
            verdict = "leak"
    except BaseException as exc:  # noqa: BLE001 - a traceback is what we are looking for
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
        verdict, detail = "traceback", f"{type(exc).__name__} at {where}: {str(exc)[:200]}"
    return verdict, detail


def _passwd_head() -> str:
    try:
        first = Path("/etc/passwd").read_text().splitlines()[0]
        return first if len(first) > 8 else ""
    except (OSError, IndexError, UnicodeDecodeError):
        return ""


_PASSWD_HEAD = _passwd_head()
WORKER_MEMORY = 6 << 30           # address-space limit of a `make fuzz` chunk process
BAD = ("traceback", "unlocated", "slow", "injected", "leak")


#: the fuzz runs with a lower element limit, so big designs take the refusal path (with the estimate) quickly
#: and the 5-s criterion measures hangs, not honest work on a 65536 x 32 array
FUZZ_ELEMENTS = 60_000
FUZZ_POINTS = 200_000


def _warm_up(work: Path) -> None:
    """Import and compile what every case uses (parser tables, templates), so case timings measure the case."""
    from circuitkit.netlist.render import render_netlist
    from circuitkit.workflow import load
    for src in SEEDS:
        try:
            _, circuit = load(src)
            render_netlist(circuit, {m.name: f"/fuzz/osdi/{m.name}.osdi" for m in circuit.device_models()},
                           io.StringIO())
        except Exception:  # noqa: BLE001 - a warm-up, not a case
            pass


def run_range(start: int, stop: int) -> list[dict]:
    return list(iter_range(start, stop))


def iter_range(start: int, stop: int):
    """Results of cases ``start`` .. ``stop - 1``, one by one, in a scratch directory."""
    from circuitkit import limits
    limits.configure(elements=FUZZ_ELEMENTS, points=FUZZ_POINTS)
    os.environ.setdefault("CKFUZZ_SECRET", SECRET)
    work = scratch()
    old = os.getcwd()
    os.chdir(work)                 # relative includes of text descriptions stay in the scratch dir
    try:
        _warm_up(work)
        for s in range(start, stop):
            yield run_case(s, work)
    finally:
        os.chdir(old)
        shutil.rmtree(work, ignore_errors=True)
        limits.configure()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--chunk-timeout", type=float, default=900.0)
    ap.add_argument("--report", type=Path, default=ROOT / "build" / "fuzz" / "report.json")
    ap.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        import resource                 # a regression must not exhaust the machine: a MemoryError is a finding
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = WORKER_MEMORY if hard == resource.RLIM_INFINITY else min(WORKER_MEMORY, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        for res in iter_range(*args.worker):
            print(json.dumps(res), flush=True)
        return 0
    counts: dict[str, int] = {}
    findings: list[dict] = []
    t0 = time.time()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for lo in range(args.start, args.start + args.cases, args.chunk):
        hi = min(lo + args.chunk, args.start + args.cases)
        try:
            out = subprocess.run([sys.executable, __file__, "--worker", str(lo), str(hi)], capture_output=True,
                                 text=True, timeout=args.chunk_timeout, env=env).stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            findings.append({"seed": lo, "verdict": "hang", "detail": f"chunk {lo}-{hi} killed after "
                                                                         f"{args.chunk_timeout} s"})
        done = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if len(done) < hi - lo and not any(f["seed"] == lo and f["verdict"] == "hang" for f in findings):
            findings.append({"seed": lo + len(done), "verdict": "crash",
                             "detail": f"chunk {lo}-{hi} stopped after {len(done)} cases"})
        for res in done:
            counts[res["verdict"]] = counts.get(res["verdict"], 0) + 1
            if res["verdict"] in BAD:
                findings.append(res)
        print(f"{hi:>7} cases  {time.time() - t0:7.0f} s  " + "  ".join(f"{k} {v}" for k, v in sorted(counts.items())),
              flush=True)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"counts": counts, "findings": findings}, indent=1))
    distinct: dict[str, dict] = {}
    for f in findings:
        distinct.setdefault(f["verdict"] + " " + re.sub(r"\d+", "N", f.get("detail", ""))[:80], f)
    print(f"\n{sum(counts.values())} cases in {time.time() - t0:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"{len(findings)} findings ({len(distinct)} distinct), report in {args.report}")
    for key, f in list(distinct.items())[:40]:
        print(f"  seed {f['seed']}: {f['verdict']}: {f.get('detail', '')[:200]}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
