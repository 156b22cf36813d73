"""ngspice netlists from :class:`~circuitkit.circuit.model.Circuit` objects.

``render_netlist(circuit, osdi, fh)`` streams the deck (Jinja2 templates in
``netlist_templates/``); ``spice_vector(circuit, probe)`` names the raw-file
vector of a probe. Every name, path and number is checked on the way out
(:mod:`circuitkit.netlist.safety`).
"""
from .render import GROUND_REF, RAW_FILE, render_netlist, render_text, saved_vectors, spice_vector
from .safety import NetlistError

__all__ = ["GROUND_REF", "RAW_FILE", "NetlistError", "render_netlist", "render_text", "saved_vectors",
           "spice_vector"]
