"""The regime verdict: a richness score, a label with hysteresis, and the explanation of which evidence drove it."""

from regimescope.verdict.explanation import EXPLANATION_TAG, explain
from regimescope.verdict.labeler import LABELS, Verdict, next_label, raw_label
from regimescope.verdict.score import RAMPS, Ramp, richness_evidence, richness_score

__all__ = [
    "EXPLANATION_TAG",
    "LABELS",
    "RAMPS",
    "Ramp",
    "Verdict",
    "explain",
    "next_label",
    "raw_label",
    "richness_evidence",
    "richness_score",
]
