"""Pure functions behind the indicators: no state, usable on their own."""

from regimescope.functional.alignment import TargetLayout, kernel_alignment, target_gram, target_layout, target_matrix
from regimescope.functional.cka import linear_cka
from regimescope.functional.effective_rank import effective_rank
from regimescope.functional.kernel_distance import kernel_angle, kernel_distance, norm_ratio, relative_change
from regimescope.functional.statistics_shift import statistics_shift

__all__ = [
    "TargetLayout",
    "effective_rank",
    "kernel_alignment",
    "kernel_angle",
    "kernel_distance",
    "linear_cka",
    "norm_ratio",
    "relative_change",
    "statistics_shift",
    "target_gram",
    "target_layout",
    "target_matrix",
]
