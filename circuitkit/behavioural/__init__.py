"""The behavioural engine: the circuit model simulated with ngspice's equations in numpy/scipy.

It solves the same modified nodal analysis ngspice does, for the same
elements (resistors, capacitors, voltage sources with SPICE waveforms, VCVS,
VCCS, Verilog-A devices through their numpy twins, level-1 MOSFETs), but
vectorised per element group instead of per element:

* ``mna.py`` -- unknowns, linear stamps (G, C, operating-point state rows)
  and one fixed CSC sparsity pattern for everything, built once;
* ``nonlinear.py`` -- device and MOSFET stamps: values and Jacobian entries
  written into that pattern at precomputed positions;
* ``sources.py`` -- all source waveforms evaluated per type in one go;
* ``newton.py`` -- Newton with sparse LU; linear circuits factor once;
* ``operating_point.py`` -- DC solution (Newton, then source stepping);
* ``transient.py`` -- fixed grid (max step + breakpoints), trapezoidal
  integration with backward-Euler steps at the start and after breakpoints;
* ``engine.py`` -- :func:`simulate`, probes to :class:`Waveforms`.

The accuracy target is agreement with ngspice to ~1e-9 relative for linear
operating points, ~1e-6 with MOSFETs and < 1 % RMS in transients (where the
two engines take different time steps).
"""
from .engine import simulate  # noqa: F401
from .newton import Tolerances  # noqa: F401
