"""Every scenario, trained once per test session (shared by the scenario, verdict, forecast and theory tests)."""

from __future__ import annotations

import functools

from regimescope.scenarios import SCENARIOS, Outcome, run_scenario


@functools.cache
def outcomes() -> dict[str, Outcome]:
    """``scenario name -> outcome`` of every scenario (about 20 s of CPU time)."""
    return {scenario.name: run_scenario(scenario) for scenario in SCENARIOS}
