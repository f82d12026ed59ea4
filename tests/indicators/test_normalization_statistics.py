"""NormalizationStatistics: running statistics reported apart from the kernel, against the float64 formula."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.capture import Need, Snapshot
from regimescope.functional.statistics_shift import statistics_shift
from regimescope.indicators.base import Context, Reference
from regimescope.indicators.normalization_statistics import NormalizationStatistics

EPS = 1e-5


def _stats(seed: int, channels: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    draw = lambda: torch.randn(channels, generator=generator, dtype=torch.float64)  # noqa: E731
    return {
        "running_mean": draw(), "running_var": draw().exp(), "batch_mean": draw(), "batch_var": draw().exp(),
        "eps": torch.tensor(EPS, dtype=torch.float64),
    }


def _context(model: nn.Module) -> Context:
    return Context(model=model, probe=rs.Probe(torch.randn(4, 2)))


def test_declares_its_need_and_reference() -> None:
    indicator = NormalizationStatistics()
    assert indicator.needs == frozenset({Need.NORMALIZATION})
    assert indicator.reference is Reference.INIT


def test_is_applicable_only_with_running_statistics() -> None:
    indicator = NormalizationStatistics()
    assert indicator.applicable(_context(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))))
    without = nn.BatchNorm1d(3, track_running_stats=False)
    assert not indicator.applicable(_context(nn.Sequential(nn.Linear(2, 3), without)))
    assert not indicator.applicable(_context(nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3))))


def test_values_are_the_shift_of_the_running_statistics_and_their_gap_to_the_probe() -> None:
    init = Snapshot(0, normalization={"a": _stats(0), "b.1": _stats(1, channels=5)})
    now = Snapshot(7, normalization={"a": _stats(2), "b.1": _stats(3, channels=5)})
    record = NormalizationStatistics().compute(now, init, _context(nn.Linear(2, 2)))
    expected = {}
    for layer in ("a", "b.1"):
        s0, s = init.normalization[layer], now.normalization[layer]
        expected[f"regimescope/normalization/running_change/{layer}"] = float(
            statistics_shift(s0["running_mean"], s0["running_var"] + EPS, s["running_mean"], s["running_var"] + EPS)
        )
        expected[f"regimescope/normalization/eval_gap/{layer}"] = float(
            statistics_shift(s["running_mean"], s["running_var"] + EPS, s["batch_mean"], s["batch_var"] + EPS)
        )
    for metric in ("running_change", "eval_gap"):
        layers = [v for k, v in expected.items() if f"/{metric}/" in k]
        expected[f"regimescope/normalization/{metric}"] = sum(layers) / 2
    assert record.step == 7
    assert record.scalars == pytest.approx(expected, rel=1e-12)
    unchanged = NormalizationStatistics().compute(init, init, _context(nn.Linear(2, 2)))
    assert unchanged.scalars["regimescope/normalization/running_change"] == 0.0
