"""The check every framework's resume test makes: same measured steps, same step-0 kernels, same curves."""

from __future__ import annotations

import pytest
import torch

import regimescope as rs


def _curves(history: list[rs.Record]) -> list[dict[str, float]]:
    """Every scalar of every record but the monitor's own timing, which differs between runs."""
    return [{k: v for k, v in r.scalars.items() if not k.startswith("regimescope/cost/")} for r in history]


def assert_resumed_like(uninterrupted: rs.RegimeMonitor, resumed: rs.RegimeMonitor, steps: list[int],
                        rel: float, abs: float) -> None:
    """``resumed`` measured the steps of ``steps`` after its resume like ``uninterrupted``, against the same step-0
    kernels, on the same curves (noise estimates included: their window is part of the monitor's state). A resumed
    monitor's history starts at the resume (the state does not carry it; the JSONL file keeps the whole run)."""
    assert [r.step for r in uninterrupted.history] == steps
    after = len(resumed.history)
    assert after >= 2 and [r.step for r in resumed.history] == steps[-after:]
    original, restored = uninterrupted.state_dict()["init"], resumed.state_dict()["init"]
    for name, kernel in original["layer_kernels"].items():
        torch.testing.assert_close(restored["layer_kernels"][name], kernel, rtol=0, atol=0)
    for expected, got in zip(_curves(uninterrupted.history[-after:]), _curves(resumed.history), strict=True):
        assert set(got) == set(expected)
        assert got == pytest.approx(expected, rel=rel, abs=abs)
