"""circuitkit's import defers the numpy sub-packages scipy touches but nothing here reads (``_lazy``)."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import circuitkit, scipy.sparse, scipy.sparse.linalg
lazy = [n for n in ("f2py", "testing", "polynomial") if type(sys.modules["numpy." + n]).__name__ == "_LazyModule"]
print(",".join(lazy))
import numpy
from numpy.testing import assert_allclose          # first use loads the real module
assert_allclose(numpy.polynomial.Polynomial([1.0, 2.0])(2.0), 5.0)
assert callable(numpy.f2py.run_main) and type(sys.modules["numpy.testing"]).__name__ == "module"
print("ok")
"""


def test_deferred_numpy_subpackages_load_on_first_use():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lazy, ok = out.stdout.split()
    assert lazy == "f2py,testing,polynomial" and ok == "ok"


def test_defer_leaves_imported_modules_alone():
    from circuitkit import _lazy
    import numpy.testing  # noqa: F401  (already imported by pytest's numpy plugin or here)
    assert "testing" not in _lazy.defer(("testing",))
