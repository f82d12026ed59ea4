"""``engine="ray"``: Ray Tune runs the grid on a local instance, and a trial that fails inside Ray is reported."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

import regimescope as rs
from tests.sweep import _task
from tests.sweep._ray import local_ray  # noqa: F401  (the fixture)

GRID = {"init_scale": [0.2, 3.0]}
DRIVER_ONLY = """
from tests.sweep._task import make_model


def build():
    return make_model()
"""
"""A module loaded from a file path in the test's process only: Ray's workers cannot import it to unpickle the
point (what ``regimescope sweep file.py:task`` did before it sent the file's code by value)."""

pytestmark = pytest.mark.slow


def _ray_sweep(make_model, tmp_path: Path, **overrides) -> rs.sweep.SweepResult:
    options = {"max_concurrent_trials": 2}
    return rs.sweep(
        make_model, GRID, engine="ray", logdir=tmp_path, ray_options=options, **_task.arguments(**overrides)
    )


@pytest.mark.usefixtures("local_ray")
def test_ray_tune_runs_the_grid_like_the_inline_engine_and_a_worker_that_dies_is_a_failed_point(
    tmp_path: Path,
) -> None:
    inline = rs.sweep(_task.make_model, GRID, **_task.arguments())
    ok, died = _ray_sweep(_task.make_model, tmp_path, train_step=_task.dying_step).table
    assert ok["init_scale"] == 0.2 and ok["error"] is None
    for key in ("forecast_ratio", "score", "distance", "growth", "loss_end"):
        assert ok[key] == pytest.approx(inline.table[0][key], rel=1e-4, abs=1e-9), key
    assert (tmp_path / "ray").is_dir() and (tmp_path / "init_scale_0.2" / "regimescope.jsonl").exists()
    assert died["init_scale"] == 3.0 and died["point"] == "init_scale=3" and died["score"] is None
    assert died["error"].startswith("ActorDiedError")  # the worker ended: no Python exception reached the point
    assert died["forecast_ratio"] == pytest.approx(inline.table[1]["forecast_ratio"])  # from the forecast stage


@pytest.mark.usefixtures("local_ray")
def test_points_the_workers_cannot_unpickle_are_failed_points_with_their_knob_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "driver_only.py"
    path.write_text(DRIVER_ONLY, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("regimescope_test_driver_only", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    spec.loader.exec_module(module)
    result = _ray_sweep(module.build, tmp_path)
    assert [row["init_scale"] for row in result.table] == GRID["init_scale"]
    assert result.failed == result.table
    for row in result.table:
        assert row["score"] is None and "regimescope_test_driver_only" in row["error"]


def test_a_trial_that_ray_ended_before_it_reported_is_a_failed_point() -> None:
    ray_engine = pytest.importorskip("regimescope.sweep.ray_engine", reason="Ray Tune is not installed")
    ended = types.SimpleNamespace(error=None, metrics={"trial_id": "0", "config": {"init_scale": 0.2}})
    row = ray_engine.trial_row(ended, {"init_scale": 0.2})
    assert row["init_scale"] == 0.2 and row["point"] == "init_scale=0.2" and row["score"] is None
    assert row["error"] == "RuntimeError: Ray ended the trial before it reported (a time budget or a stop)"


def test_unknown_ray_options_are_refused_before_anything_runs() -> None:
    pytest.importorskip("ray.tune", reason="Ray Tune is not installed (pip install -e '.[ray]')")
    with pytest.raises(ValueError, match=r"Unknown Ray option\(s\) \['colour'\].*num_cpus.*max_concurrent_trials"):
        rs.sweep(_task.make_model, GRID, engine="ray", ray_options={"colour": "red"}, **_task.arguments())
