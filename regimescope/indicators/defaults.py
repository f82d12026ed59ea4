"""The indicator set a monitor uses when the user names none."""

from __future__ import annotations

from regimescope.indicators.activation_pattern import ActivationPatternChange
from regimescope.indicators.balance import BalanceIndicator
from regimescope.indicators.base import Indicator
from regimescope.indicators.effective_rank import KernelEffectiveRank
from regimescope.indicators.kernel_alignment import KernelTargetAlignment
from regimescope.indicators.kernel_distance import KernelDistance
from regimescope.indicators.kernel_heatmap import KernelHeatmap
from regimescope.indicators.kernel_scale import KernelScale
from regimescope.indicators.kernel_velocity import KernelVelocity
from regimescope.indicators.layer_kernels import LayerKernels
from regimescope.indicators.layer_summary import LayerSummary
from regimescope.indicators.non_finite import NonFiniteValues
from regimescope.indicators.normalization_statistics import NormalizationStatistics
from regimescope.indicators.representation_alignment import RepresentationAlignment
from regimescope.indicators.representation_drift import RepresentationDrift
from regimescope.indicators.trained_parameters import TrainedParameters
from regimescope.indicators.weight_change import WeightChange


def default_indicators(heatmap_every: int = 10) -> list[Indicator]:
    """Every built-in indicator, the kernel heatmap emitted every ``heatmap_every``-th measurement."""
    return [
        NonFiniteValues(),
        KernelDistance(),
        KernelScale(),
        KernelVelocity(),
        KernelTargetAlignment(),
        KernelEffectiveRank(),
        LayerKernels(),
        LayerSummary(),
        KernelHeatmap(every=heatmap_every),
        BalanceIndicator(),
        WeightChange(),
        RepresentationDrift(),
        RepresentationAlignment(),
        ActivationPatternChange(),
        NormalizationStatistics(),
        TrainedParameters(),
    ]
