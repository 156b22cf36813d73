"""Defer numpy sub-packages that scipy imports but circuitkit never uses.

Importing ``scipy.sparse`` loads scipy's array-API layer, whose copy of the
numpy namespace (``clone_module``) touches every name in ``dir(numpy)`` --
so it imports ``numpy.f2py``, ``numpy.testing``, ``numpy.polynomial`` and
the other lazily exported sub-packages: measured on a shared 2-core
machine, a ``scipy.sparse`` import takes 0.25 s with them and 0.12 s
without, a cost every ``circuitkit`` process paid.
:func:`defer` registers those sub-packages as lazy modules
(:class:`importlib.util.LazyLoader`) before scipy is imported: the module
object exists, and it is executed the first time anyone reads one of its
attributes (``numpy.testing.assert_allclose``, ``from numpy.ma import
masked``), exactly as an ordinary import would have done earlier. A
sub-package that is already imported is left alone, so calling this after
the fact changes nothing.

Only sub-packages nothing in circuitkit's dependencies reads on a hot path
are deferred: Python 3.11's lazy modules are not safe against two threads
reading a first attribute at once, so ``numpy.ma`` (pandas checks for
masked arrays whenever it builds a frame), ``rec``, ``char`` and
``strings`` (another 25 ms) load as before.
"""
from __future__ import annotations

import importlib.util
import sys

#: numpy sub-packages circuitkit never reads (scipy's import touches them all)
DEFERRED = ("f2py", "testing", "ctypeslib", "polynomial", "matlib")


def defer(names=DEFERRED) -> list[str]:
    """Register each not-yet-imported ``numpy.<name>`` as a lazy module; returns the names registered."""
    import numpy
    done = []
    for name in names:
        full = f"numpy.{name}"
        if full in sys.modules or name in vars(numpy):
            continue
        try:
            spec = importlib.util.find_spec(full)
        except (ImportError, ValueError):
            continue
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            continue
        spec.loader = importlib.util.LazyLoader(spec.loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        setattr(numpy, name, module)
        done.append(name)
    return done
