"""circuitkit: co-simulation of memristive crossbars in ngspice and numpy."""
from ._lazy import defer as _defer

__version__ = "0.1.0"

_defer()
