"""The empirical NTK engine: exact per-layer rules, generic ``torch.func`` paths, memory plans and sketches.

The stages, in the order each builds on the last (each imports only the stages before it, which
``tests/ntk/test_structure.py`` checks): :mod:`~regimescope.ntk.implementation` (the ways a block can be computed,
and the default); :mod:`~regimescope.ntk.rules` (the exact per-layer rules, their registry on top);
:mod:`~regimescope.ntk.model` (the model taken apart: functional call, parameter blocks matched to rules, hooks);
:mod:`~regimescope.ntk.planning` (forms, chunks and memory); :mod:`~regimescope.ntk.execution` (the plan carried
out); then :mod:`~regimescope.ntk.options` and :mod:`~regimescope.ntk.engine`, the public functions that drive them
all. Read a kernel's computation from :func:`~regimescope.ntk.engine.empirical_ntk` down.
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
