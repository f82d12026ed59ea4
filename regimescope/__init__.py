"""regimescope: is your network learning lazily (NTK regime) or richly (feature learning), and when does it change?

The public surface: pure functions (``empirical_ntk``, ``kernel_distance``, ``kernel_alignment``, ``linear_cka``,
``effective_rank``, ``conserved_quantities``), the :class:`Probe`, and the :class:`RegimeMonitor`.
"""

from regimescope.alerts import Alert
from regimescope.conservation import conserved_quantities
from regimescope.functional import (
    effective_rank,
    kernel_alignment,
    kernel_angle,
    kernel_distance,
    linear_cka,
    norm_ratio,
    relative_change,
)
from regimescope.monitor import RegimeMonitor
from regimescope.ntk import Implementation, empirical_ntk
from regimescope.probe import Probe
from regimescope.record import Record
from regimescope.schedule import LogThenEvery
from regimescope.sinks import CallbackSink, JsonlSink, MemorySink, Sink, TensorBoardSink
from regimescope.verdict import Verdict

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "CallbackSink",
    "Implementation",
    "JsonlSink",
    "LogThenEvery",
    "MemorySink",
    "Probe",
    "Record",
    "RegimeMonitor",
    "Sink",
    "TensorBoardSink",
    "Verdict",
    "__version__",
    "conserved_quantities",
    "effective_rank",
    "empirical_ntk",
    "kernel_alignment",
    "kernel_angle",
    "kernel_distance",
    "linear_cka",
    "norm_ratio",
    "relative_change",
]
