"""The ``shared`` ngspice backend: libngspice through PySpice, in a child process.

:func:`run_shared_isolated` (what ``backend="shared"`` calls) hands the deck
to a long-lived child Python process (:class:`_Worker`, started on first use,
private working directory) that runs :func:`run_shared` there, so a crash
inside libngspice (SIGBUS from a damaged model library, an abort) is reported
as a :class:`SpiceError`, this interpreter lives on and the next run starts a
fresh child.
:func:`run_shared` itself runs libngspice in the calling process:

PySpice 1.5 is used only to load libngspice and register the callbacks; the
deck is run with the library's own calls because PySpice's wrappers raise as
soon as ngspice writes anything to stderr (ngspice writes notes and warnings
there too) and do not know ngspice 46. Here:

* PySpice is pointed at ``libngspice.so.0`` (:func:`toolchain.find_libngspice`),
  its unsupported-version warning and its log noise are silenced;
* the ``.control`` block is taken out of the deck; its ``pre_osdi FILE`` lines
  become ``osdi FILE`` commands run before the circuit is loaded, its analysis
  lines (``run``, ``tran`` ...) run after, in ngspice's background thread so a
  timeout can halt them (``bg_halt``); ``write`` and ``quit`` are dropped since
  the vectors are read from memory;
* the vectors of the current plot are collected with the same name
  normalisation as the raw-file reader, and success or failure is decided
  from the output, exactly as for the batch backend.

libngspice holds one circuit at a time per process, so runs are serialised by a
lock, and every run removes its circuit and plots afterwards. Some ngspice
state still outlives a circuit (measured with ngspice 46: ``.options interp``
stays in force for later circuits), so the batch backend, one process per
run, remains the reference; the renderer's decks do not use such options.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import SpiceError, ToolchainError
from .rawfile import normalise_name
from .runner import LOG_NAME, SpiceRun, check_log, find_warnings
from .toolchain import find_libngspice

#: control-block commands that start an analysis: run in the background thread
ANALYSES = frozenset({"run", "tran", "op", "ac", "dc", "noise", "tf", "pz", "sens", "disto", "pss", "sp"})
#: control-block commands that make no sense in memory (results are read directly)
DROPPED = frozenset({"write", "wrdata", "quit", "exit", "pre_osdi"})
#: ngspice's vector types (enum simulation_types) -> raw-file type names
_VTYPES = {0: "notype", 1: "time", 2: "frequency", 3: "voltage", 4: "current"}
START_WAIT_S = 5.0
HALT_WAIT_S = 10.0

_LOCK = threading.RLock()
_ENGINE: "_Engine | None" = None
_BROKEN: str | None = None


def split_deck(text: str, workdir: Path) -> tuple[list[str], list[Path], list[str] | None]:
    """Deck lines without ``.control`` blocks, the ``pre_osdi`` files and the other control lines.

    Relative ``pre_osdi`` paths are taken relative to ``workdir`` (the batch
    backend's working directory). The control lines are None when the deck
    has no ``.control`` block.
    """
    deck, osdi, control = [], [], []
    in_control = has_control = False
    for line in text.splitlines():
        word = line.strip().split(maxsplit=1)
        head = word[0].lower() if word else ""
        if head == ".control":
            in_control = has_control = True
            continue
        if head == ".endc":
            in_control = False
            continue
        if not in_control:
            deck.append(line)
            continue
        if not head or head.startswith(("*", "#")):
            continue
        if head == "pre_osdi" and len(word) > 1:
            path = Path(word[1].strip().strip('"'))
            osdi.append(path if path.is_absolute() else workdir / path)
        elif head not in DROPPED:
            control.append(line.strip())
    if not any(line.strip().lower() == ".end" for line in deck):
        deck.append(".end")
    return deck, osdi, (control if has_control else None)


def run_shared(netlist: Path, timeout: float, workdir: Path) -> SpiceRun:
    """Run ``netlist`` in libngspice; same result and errors as the batch backend."""
    text = Path(netlist).read_text()
    deck, osdi_files, control = split_deck(text, workdir)
    if control is None:
        control = ["run"]  # like ngspice -b on a deck without .control: run its dot analyses
    with _LOCK:
        engine = _engine()
        t0 = time.perf_counter()
        try:
            timed_out = False
            for path in osdi_files:
                engine.command(f"osdi {path}")
            engine.load_circuit(deck)
            for cmd in control:
                if cmd.split()[0].lower() in ANALYSES:
                    if not engine.background(cmd, timeout - (time.perf_counter() - t0)):
                        timed_out = True
                        break
                else:
                    engine.command(cmd)
            wall = time.perf_counter() - t0
            vectors = {} if timed_out else engine.vectors()
        finally:
            log = engine.take_log()
            engine.reset()
    log = _drop_stale_osdi_warning(log)
    try:
        (workdir / LOG_NAME).write_text(log)
    except OSError:
        pass
    if timed_out:
        raise SpiceError("timeout", f"ngspice did not finish within {timeout:g} s",
                         log.splitlines()[-10:], log=log, netlist=Path(netlist))
    if "cannot recover" in log:
        _mark_broken("libngspice reported it cannot recover; use the batch backend or restart the process")
    check_log(log, Path(netlist), returncode=None, have_results=bool(vectors))
    return SpiceRun(vectors=vectors, log=log, warnings=find_warnings(log), backend="shared",
                    wall_s=wall, ngspice_version=str(engine.version))


def _drop_stale_osdi_warning(log: str) -> str:
    """libngspice keeps saying 'OSDI libs have not been loaded successfully' in every
    run after one whose ``osdi`` load failed; drop it unless this run's load failed."""
    stale = "OSDI libs have not been loaded successfully"
    if stale not in log or re.search(r"error opening osdi|couldn'?t be loaded", log, re.I):
        return log
    return "\n".join(line for line in log.split("\n") if stale not in line)


def _mark_broken(reason: str) -> None:
    global _BROKEN
    _BROKEN = reason


def _engine() -> "_Engine":
    global _ENGINE
    if _BROKEN:
        raise ToolchainError(f"shared ngspice backend unusable: {_BROKEN}")
    if _ENGINE is None:
        _ENGINE = _Engine(find_libngspice())
    return _ENGINE


def _quiet_pyspice() -> None:
    """PySpice logs every stderr line as an error and warns about ngspice 46: keep that out."""
    logger = logging.getLogger("PySpice")
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


class _Engine:
    """One libngspice instance with output capture and background-run control."""

    def __init__(self, library: Path):
        _quiet_pyspice()
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi
        except ImportError as exc:
            raise ToolchainError(f"PySpice is not importable ({exc}); run `make setup`") from exc
        self._ffi = ffi
        self._out: list[str] = []
        self._out_lock = threading.Lock()
        self._started = threading.Event()
        self._stopped = threading.Event()
        engine = self

        class _Shared(NgSpiceShared):
            LIBRARY_PATH = str(library).replace("{", "{{").replace("}", "}}")

            def send_char(self, message, ngspice_id):
                engine._collect(message)
                return 0

            def send_stat(self, message, ngspice_id):
                return 0

            def exec_command(self, command, join_lines=True):  # never raise on stderr output
                self.clear_output()
                self._ngspice_shared.ngSpice_Command(command.encode("ascii"))
                return self.stdout if join_lines else self._stdout

            @staticmethod
            def _background_thread_running(no_bg_thread, ngspice_id, user_data):
                # ngspice passes true when the background thread is *not* running
                (engine._stopped if no_bg_thread else engine._started).set()
                return 0

        try:
            self._shared = _Shared(ngspice_id=0)
        except Exception as exc:  # cffi / dlopen errors have no common base
            raise ToolchainError(f"cannot load libngspice from {library} through PySpice: {exc}") from exc
        self._lib = self._shared._ngspice_shared
        self.version = self._shared.ngspice_version or ""
        self.take_log()

    # -- output -------------------------------------------------------------------------
    def _collect(self, message: str) -> None:
        prefix, _, content = message.partition(" ")
        if prefix not in ("stdout", "stderr"):
            content = message
        if "\r" in content or "Reference value" in content:
            return  # progress meter
        with self._out_lock:
            self._out.append(content.rstrip())

    def take_log(self) -> str:
        with self._out_lock:
            lines, self._out = self._out, []
        return "\n".join(lines) + ("\n" if lines else "")

    # -- commands -----------------------------------------------------------------------
    def command(self, cmd: str) -> None:
        if len(cmd) > 1023:
            raise SpiceError("syntax", f"ngspice command longer than 1023 characters: {cmd[:60]}...")
        self._lib.ngSpice_Command(cmd.encode("utf-8"))

    def load_circuit(self, lines: list[str]) -> None:
        keep = [self._ffi.new("char[]", line.encode("utf-8")) for line in lines if line.strip()]
        keep.append(self._ffi.NULL)
        self._lib.ngSpice_Circ(self._ffi.new("char *[]", keep))

    def background(self, cmd: str, timeout: float) -> bool:
        """Run ``cmd`` in ngspice's background thread; False when it had to be halted."""
        self._started.clear()
        self._stopped.clear()
        t0 = time.perf_counter()
        self.command(f"bg_{cmd}")
        try:
            while not self._stopped.wait(0.02):
                elapsed = time.perf_counter() - t0
                if not self._started.is_set() and elapsed > START_WAIT_S and not self._lib.ngSpice_running():
                    return True  # the thread never reported starting: nothing is running
                if elapsed > timeout:
                    self.halt()
                    return False
        except BaseException:  # Ctrl-C / cancellation: stop the simulation thread too
            self.halt()
            raise
        return True

    def halt(self) -> None:
        self.command("bg_halt")
        self._stopped.wait(HALT_WAIT_S)

    def vectors(self) -> dict[str, np.ndarray]:
        """Vectors of the current plot (empty when there is none but ``const``)."""
        ffi, lib = self._ffi, self._lib
        cur = lib.ngSpice_CurPlot()
        plot = ffi.string(cur).decode() if cur != ffi.NULL else ""
        if not plot or plot == "const":
            return {}
        names = []
        all_vecs = lib.ngSpice_AllVecs(plot.encode())
        k = 0
        while all_vecs != ffi.NULL and all_vecs[k] != ffi.NULL:
            names.append(ffi.string(all_vecs[k]).decode())
            k += 1
        out: dict[str, np.ndarray] = {}
        for name in names:
            info = lib.ngGet_Vec_Info(f"{plot}.{name}".encode())
            if info == ffi.NULL:
                continue
            n = info.v_length
            if info.v_compdata != ffi.NULL:
                raw = np.frombuffer(ffi.buffer(info.v_compdata, n * 16), dtype=np.float64)
                values = raw[0::2] + 1j * raw[1::2]
            elif info.v_realdata != ffi.NULL:
                values = np.frombuffer(ffi.buffer(info.v_realdata, n * 8), dtype=np.float64).copy()
            else:
                continue
            key = normalise_name(name, _VTYPES.get(info.v_type, "notype"))
            if key in ("time", "frequency") and np.iscomplexobj(values) and not np.any(values.imag):
                values = values.real.copy()
            out.setdefault(key, values)
        return out

    def reset(self) -> None:
        """Forget the circuit and its plots so the next run starts clean."""
        self.command("remcirc")
        self.command("destroy all")
        self.take_log()


def shared_available() -> tuple[bool, str]:
    """Whether the shared backend can be started here, and why not."""
    try:
        with _LOCK:
            _engine()
        return True, ""
    except ToolchainError as exc:
        return False, str(exc)


# --------------------------------------------------------------------------- isolation

#: extra seconds the worker gets beyond the run's timeout to report
CHILD_GRACE_S = 60.0

_WORKER_LOCK = threading.Lock()
_WORKER: "_Worker | None" = None


class _Worker:
    """A child Python process holding libngspice, serving one run at a time.

    Requests go down its stdin as JSON lines; it answers on a pipe of its own
    (ngspice may print to the child's stdout) with one line per run and leaves
    the pickled :class:`SpiceRun` or error in a file. Its working directory and
    HOME are a private directory, removed when the worker ends.
    """

    def __init__(self):
        import atexit
        import os
        import subprocess
        import sys

        from .runner import private_dir
        self.private = private_dir("ngspice-shared")
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, HOME=str(self.private), LC_ALL="C", LANG="C",
                   PYTHONPATH=os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                                        if p]))
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", f"from circuitkit.spice.shared import _serve; _serve({write_fd})"],
                cwd=self.private, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, pass_fds=(write_fd,), start_new_session=True)
        finally:
            os.close(write_fd)
        self.answers = os.fdopen(read_fd, "rb", buffering=0)
        self.owner = os.getpid()                    # a forked copy of this process must start its own
        atexit.register(self.stop)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, netlist: Path, timeout: float, workdir: Path) -> SpiceRun:
        import json
        import pickle
        import select
        import signal

        result = self.private / "result.pickle"
        result.unlink(missing_ok=True)
        request = {"netlist": str(netlist), "workdir": str(workdir), "timeout": timeout, "result": str(result)}
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass                                            # the worker died: reported below
        ready, _, _ = select.select([self.answers], [], [], timeout + CHILD_GRACE_S)
        line = self.answers.readline() if ready else None
        if line is None:                                     # no answer in time: stop it, start afresh next run
            self.stop()
            raise SpiceError("timeout", f"ngspice (shared backend) did not finish within {timeout:g} s",
                             netlist=netlist)
        if not line:                                         # EOF: the worker died during the run
            code = self.proc.wait()
            self.stop()
            try:
                name = signal.Signals(-code).name if code is not None and code < 0 else f"exit status {code}"
            except ValueError:
                name = f"signal {-code}"
            log = ""
            try:
                log = (workdir / LOG_NAME).read_text(errors="replace")
            except OSError:
                pass
            raise SpiceError("failed", f"ngspice crashed the shared-library backend ({name}); the batch "
                                       "backend (--backend batch) may say more",
                             [line for line in log.splitlines() if line.strip()][-20:], log=log, netlist=netlist)
        with open(result, "rb") as fh:
            kind, payload = pickle.load(fh)
        if line.strip() == b"exit":                          # the worker's libngspice is unusable: it left
            self.stop()
        if kind == "ok":
            return payload
        if kind == "spice_error":
            err = SpiceError(payload["kind"], payload["message"], payload["log_lines"], log=payload["log"],
                             netlist=netlist)
            if "time" in payload:
                err.time = payload["time"]  # type: ignore[attr-defined]
            raise err
        raise ToolchainError(payload) if kind == "toolchain" else SpiceError("failed", payload, netlist=netlist)

    def stop(self) -> None:
        import os
        import shutil
        import signal
        global _WORKER
        if os.getpid() != self.owner:               # inherited through fork: not ours to stop
            if _WORKER is self:
                _WORKER = None
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            pass
        for stream in (self.proc.stdin, self.answers):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.private, ignore_errors=True)
        if _WORKER is self:
            _WORKER = None


def run_shared_isolated(netlist: Path, timeout: float, workdir: Path) -> SpiceRun:
    """:func:`run_shared` in a long-lived child process (:class:`_Worker`) with a private working directory.

    libngspice runs in the child, so if ngspice crashes (a damaged model
    library raises SIGBUS, an assertion aborts) the child dies and this
    process raises a :class:`SpiceError` naming the signal; the next run starts
    a fresh child. The child's working directory and HOME are a private
    directory, so no ``.spiceinit`` of the output directory or home is read.
    """
    import os
    global _WORKER
    netlist = Path(netlist).resolve()
    workdir = Path(workdir).resolve()
    with _WORKER_LOCK:
        if _WORKER is None or _WORKER.owner != os.getpid() or not _WORKER.alive():
            if _WORKER is not None:
                _WORKER.stop()
            _WORKER = _Worker()
        return _WORKER.run(netlist, timeout, workdir)


def _serve(answer_fd: int) -> None:
    """The worker's loop: one JSON request per stdin line, one answer line on ``answer_fd`` per run."""
    import os
    import shutil

    answers = os.fdopen(answer_fd, "wb", buffering=0)
    home = Path.cwd()
    try:
        _serve_loop(answers)
    finally:                                        # the parent is gone (or asked us to go): clean up
        if home.name.startswith("circuitkit-ngspice-shared-"):
            shutil.rmtree(home, ignore_errors=True)


def _serve_loop(answers) -> None:
    import json
    import pickle
    import sys

    from ..errors import CircuitkitError
    for line in sys.stdin:
        if not line.strip():
            continue
        args = json.loads(line)
        try:
            run = run_shared(Path(args["netlist"]), timeout=float(args["timeout"]), workdir=Path(args["workdir"]))
            payload = ("ok", run)
        except SpiceError as exc:
            message = str(exc).split("\n", 1)[0].split(": ", 1)[-1]
            payload = ("spice_error", {"kind": exc.kind, "message": message, "log_lines": exc.log_lines,
                                       "log": exc.log})
            if hasattr(exc, "time"):
                payload[1]["time"] = exc.time
        except ToolchainError as exc:
            payload = ("toolchain", str(exc))
        except CircuitkitError as exc:
            payload = ("other", str(exc))
        with open(args["result"], "wb") as fh:
            pickle.dump(payload, fh)
        if _BROKEN:
            answers.write(b"exit\n")
            return
        answers.write(b"done\n")
