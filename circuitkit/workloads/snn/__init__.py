"""Spiking networks that learn in the devices: pulse-level STDP and three-factor rules on crossbars.

* :mod:`.cosim` -- LIF neurons (numpy) in the loop with a crossbar simulated in chunks on either engine;
* :mod:`.stdp` -- the STDP window of a device model under a pre/post pulse shape;
* :mod:`.tasks` -- coincidence detection with pair-based STDP and with a three-factor rule.
"""


def __getattr__(name):          # lazy: the CLI registers its commands without importing numpy
    if name in ("LIF", "CoSim", "CoSimResult"):
        from . import cosim
        return getattr(cosim, name)
    raise AttributeError(name)
