"""The calibration scenarios, trained once per test session (shared by tests/verdict, tests/forecast, tests/theory)."""

from __future__ import annotations

import functools

from regimescope.verdict.calibration import SCENARIOS, Outcome, run_scenario


@functools.cache
def outcomes() -> dict[str, Outcome]:
    """``scenario name -> outcome`` of every calibration scenario (about 15 s on one core)."""
    return {scenario.name: run_scenario(scenario) for scenario in SCENARIOS}
