"""regimescope: is your network learning lazily (NTK regime) or richly (feature learning), and when does it change?

The public surface: pure functions (``empirical_ntk``, ``kernel_distance``, ``kernel_alignment``, ``linear_cka``,
``effective_rank``, ``conserved_quantities``), the :class:`Probe`, the :class:`RegimeMonitor`, and ``sweep`` (phase
diagrams over knobs; the knobs themselves are in :mod:`regimescope.knobs`).

Names are resolved on first access (PEP 562), so importing a light subpackage (e.g. the TensorBoard plugin)
does not import torch; ``import regimescope`` itself stays torch + numpy only either way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Alert": "regimescope.alerts",
    "CallbackSink": "regimescope.sinks",
    "Implementation": "regimescope.ntk",
    "JsonlSink": "regimescope.sinks",
    "LogThenEvery": "regimescope.schedule",
    "MemorySink": "regimescope.sinks",
    "Probe": "regimescope.probe",
    "Record": "regimescope.record",
    "RegimeWarning": "regimescope.alerts",
    "RegimeMonitor": "regimescope.monitor",
    "Sink": "regimescope.sinks",
    "TensorBoardSink": "regimescope.sinks",
    "Verdict": "regimescope.verdict",
    "conserved_quantities": "regimescope.conservation",
    "effective_rank": "regimescope.functional",
    "forecast_regime": "regimescope.forecast",
    "empirical_ntk": "regimescope.ntk",
    "kernel_alignment": "regimescope.functional",
    "kernel_angle": "regimescope.functional",
    "kernel_distance": "regimescope.functional",
    "linear_cka": "regimescope.functional",
    "norm_ratio": "regimescope.functional",
    "relative_change": "regimescope.functional",
    "sweep": "regimescope.sweep",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from regimescope.alerts import Alert, RegimeWarning
    from regimescope.conservation import conserved_quantities
    from regimescope.forecast import forecast_regime
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
    from regimescope.sweep import sweep
    from regimescope.verdict import Verdict


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'regimescope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
