"""The empirical NTK engine: exact per-layer rules, generic ``torch.func`` paths, memory plans and sketches.

Read it in the order the work flows: :mod:`~regimescope.ntk.engine` (the public functions and their options)
takes the model apart (:mod:`~regimescope.ntk.model`: functional call, parameter blocks, hooks), matches layers to
exact rules (:mod:`~regimescope.ntk.rules`, registry on top), plans forms, chunks and memory
(:mod:`~regimescope.ntk.planning`) and carries the plan out (:mod:`~regimescope.ntk.execution`). Each stage imports
only the stages before it.
"""

from regimescope.ntk.engine import empirical_ntk, plan_ntk
from regimescope.ntk.implementation import DEFAULT_IMPLEMENTATION, Implementation
from regimescope.ntk.model.blocks import layer_names
from regimescope.ntk.model.model_call import compute_dtype
from regimescope.ntk.model.output_map import projection_estimate
from regimescope.ntk.planning.memory import NtkMemoryWarning
from regimescope.ntk.planning.plan import BlockPlan, NtkPlan
from regimescope.ntk.planning.probe_cache import ProbePassCache

__all__ = [
    "DEFAULT_IMPLEMENTATION",
    "BlockPlan",
    "Implementation",
    "NtkMemoryWarning",
    "NtkPlan",
    "ProbePassCache",
    "compute_dtype",
    "empirical_ntk",
    "layer_names",
    "plan_ntk",
    "projection_estimate",
]
