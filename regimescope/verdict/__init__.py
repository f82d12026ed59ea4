"""The regime verdict: a richness score, a label with hysteresis, and the explanation of which evidence drove it."""

from regimescope.verdict.explanation import explain
from regimescope.verdict.judge import RegimeJudge
from regimescope.verdict.labeler import LABELS, Verdict, next_label, raw_label
from regimescope.verdict.score import RAMPS, Ramp, evidence_sources, richness_evidence, richness_score

__all__ = [
    "LABELS",
    "RAMPS",
    "Ramp",
    "RegimeJudge",
    "Verdict",
    "evidence_sources",
    "explain",
    "next_label",
    "raw_label",
    "richness_evidence",
    "richness_score",
]
