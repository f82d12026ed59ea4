"""The verdict stage of a monitor: the step-0 forecast, then at each measurement a score, a label, an explanation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch

from regimescope.capture.capture import measured_model
from regimescope.capture.config import CaptureConfig
from regimescope.forecast import Forecast, forecast_regime
from regimescope.indicators.base import Context
from regimescope.record import Record
from regimescope.tags import REGIME_EXPLANATION, REGIME_FORECAST, REGIME_LABEL, REGIME_SCORE
from regimescope.verdict.explanation import explain
from regimescope.verdict.labeler import Verdict, next_label
from regimescope.verdict.score import richness_evidence, richness_score

logger = logging.getLogger(__name__)

class RegimeJudge:
    """Turns each record into a verdict and keeps the forecast made at initialisation.

    At each measurement with kernel evidence: the richness score from the evidence the indicators declared
    (:func:`~regimescope.verdict.score.richness_score`), the label with hysteresis
    (:func:`~regimescope.verdict.labeler.next_label`), and the explanation; they are written into the record as
    ``regimescope/regime/score``, ``.../label`` and ``.../explanation``, the forecast (``.../forecast``) with the
    first verdict.

    Args:
        sources: ``evidence name -> tag`` (:func:`~regimescope.verdict.score.evidence_sources` of the active
            indicators).
        strict: Raise a failing forecast instead of logging it and going on without one.
        measurement: What a reduced measurement computes, for the explanation (``None``: the exact measurement).
    """

    def __init__(self, sources: Mapping[str, str], *, strict: bool = False, measurement: str | None = None) -> None:
        self.sources = dict(sources)
        self.strict = strict
        self.measurement = measurement
        self.verdict: Verdict | None = None
        self.forecast: Forecast | None = None
        self._last_scalars: dict[str, float] = {}

    def make_forecast(
        self, context: Context, config: CaptureConfig, kernels: Mapping[str, torch.Tensor] | None = None
    ) -> None:
        """Forecast the regime from the initialisation (:func:`~regimescope.forecast.forecast_regime`) on the
        measured model and probe, reusing the step-0 per-layer ``kernels`` the capture computed with ``config``'s
        settings (every block the monitor measures, which at step 0 are all the trainable ones) and the layer pairs
        the context found (a model ``torch.fx`` cannot trace is not traced again to say so); a failure is logged
        and the run goes on without a forecast, unless strict."""
        try:
            self.forecast = forecast_regime(
                measured_model(context.model, context.probe, config),
                context.probe,
                learning_rates=context.learning_rates,
                kernels=dict(kernels) if kernels else None,
                kernel_options={**config.kernel_options(), "layers": None},
                pairs=context.layer_pairs,
            )
        except Exception:
            if self.strict:
                raise
            logger.exception("regimescope: the step-0 forecast failed; monitoring goes on without it.")
            return
        logger.info("regimescope %s", self.forecast.markdown())

    def judge(self, record: Record) -> Verdict | None:
        """The verdict on ``record`` (``None`` when it holds no kernel evidence), written into the record."""
        score = richness_score(record.scalars, self.sources)
        if score is None:
            return None
        previous = self.verdict
        label = next_label(previous.label if previous else None, score)
        verdict = Verdict(
            step=record.step, score=score, label=label, evidence=richness_evidence(record.scalars, self.sources)
        )
        record.scalars[REGIME_SCORE] = score
        record.scalars[REGIME_LABEL] = float(verdict.label_index)
        self.verdict = verdict
        self._last_scalars = dict(record.scalars)
        record.texts[REGIME_EXPLANATION] = self.explain()
        if previous is None and self.forecast is not None:
            record.texts[REGIME_FORECAST] = self.forecast.markdown()
        return verdict

    def adopt(self, verdict: Verdict) -> None:
        """Take the verdict another process judged (ranks other than 0 of a distributed job)."""
        self.verdict = verdict

    def explain(self, advice: str | None = None) -> str:
        """The explanation of the current verdict (see :func:`~regimescope.verdict.explanation.explain`), with
        ``advice`` appended when given."""
        return explain(
            self.verdict, self._last_scalars, self._forecast_line(), self.sources, self.measurement, advice
        )

    def _forecast_line(self) -> str | None:
        if self.forecast is None or self.forecast.label is None:
            return None
        return f"Forecast at step 0: {self.forecast.label} ({self.forecast.reasons[0]})"

    def state_dict(self) -> dict[str, Any]:
        """The verdict, the scalars it was made on and the forecast, as plain containers."""
        return {
            "verdict": None if self.verdict is None else asdict(self.verdict),
            "scalars": dict(self._last_scalars),
            "forecast": None if self.forecast is None else self.forecast.to_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.verdict = None if state["verdict"] is None else Verdict(**state["verdict"])
        self._last_scalars = dict(state.get("scalars", {}))
        self.forecast = None if state.get("forecast") is None else Forecast.from_state(state["forecast"])
