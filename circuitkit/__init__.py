"""circuitkit: co-simulation of memristive crossbars in ngspice and numpy."""
__version__ = "0.1.0"
