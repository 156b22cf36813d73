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
* ``newton.py`` -- Newton with sparse LU in a fill-reducing order computed
  once, device states private to their device eliminated per device with
  vector operations, chord iterations reusing the last LU while it contracts
  fast (so one factorisation serves many steps); linear circuits factor once;
* ``operating_point.py`` -- DC solution (Newton, then source stepping);
* ``transient.py`` -- trapezoidal integration with local-truncation-error step control and
  rejection (ngspice's tolerances), steps landing on breakpoints, backward-Euler steps at the
  start and after breakpoints, a predictor for Newton;
* ``engine.py`` -- :func:`simulate`, probes to :class:`Waveforms`;
* ``reads.py`` -- the linear-regime fast path for crossbar reads: the reduced
  nodal system factored once (``ordering.py``: geometric nested dissection),
  a transfer matrix from row drivers to column currents for batches of read
  vectors (:func:`read_many`, :class:`LinearReads`); for plain 1R crossbars
  ``linesolve.py`` solves DC reads by conjugate gradients preconditioned with
  exact word- and bit-line solves;
* ``batch.py`` -- :func:`read_crossbar`, the one entry point for batched
  reads: the DC solution of the nonlinear circuit per read vector (Newton
  batched over vectors) unless the model shows the cells are linear at the
  read voltages, then the transfer matrix; the result says which and why.

The accuracy target is agreement with ngspice to ~1e-9 relative for linear
operating points, ~1e-6 with MOSFETs and < 1 % RMS in transients (where the
two engines take different time steps).
"""
from .engine import simulate  # noqa: F401
from .newton import Tolerances  # noqa: F401
from .batch import CrossbarReader, ReadResult, read_crossbar  # noqa: F401
from .reads import LinearisedReadWarning, LinearReads, dc_read, read_many  # noqa: F401
