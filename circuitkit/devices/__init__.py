"""Device models: Verilog-A files in ``verilog_a/`` and their numpy twins here."""
from .base import GLEAK, REGISTRY, DeviceModel, Parameter, ParamSet, State, register  # noqa: F401
from . import registry  # noqa: F401  (imports the shipped twins)
from .registry import get_model, list_models  # noqa: F401
