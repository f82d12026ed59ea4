"""The regime verdict: a richness score and a label with hysteresis."""

from regimescope.verdict.labeler import LABELS, Verdict, next_label, raw_label
from regimescope.verdict.score import richness_evidence, richness_score

__all__ = ["LABELS", "Verdict", "next_label", "raw_label", "richness_evidence", "richness_score"]
