"""The empirical NTK engine: exact per-layer rules, generic ``torch.func`` paths, memory plans and sketches."""

from regimescope.ntk.blocks import layer_names
from regimescope.ntk.engine import empirical_ntk, plan_ntk
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, Implementation
from regimescope.ntk.memory import NtkMemoryWarning
from regimescope.ntk.plan import BlockPlan, NtkPlan

__all__ = [
    "DEFAULT_IMPLEMENTATION",
    "BlockPlan",
    "Implementation",
    "NtkMemoryWarning",
    "NtkPlan",
    "empirical_ntk",
    "layer_names",
    "plan_ntk",
]
