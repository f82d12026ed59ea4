"""``rs.sweep`` end to end on a tiny task: the table, the files, the HParams entries, failures, engines, Optuna
(Ray Tune: ``test_ray.py``)."""

from __future__ import annotations

import concurrent.futures
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

import regimescope as rs
from regimescope.progress import Progress
from regimescope.sweep import SweepPoint, SweepTask, parse_grid
from tests.sweep import _task

GRID = {"init_scale": [0.2, 3.0], "lr": [0.01, 0.03]}


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[rs.sweep.SweepResult, Path]:
    pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")
    root = tmp_path_factory.mktemp("sweep")
    result = rs.sweep(_task.make_model, GRID, logdir=root / "runs", out=root / "report", **_task.arguments())
    return result, root


def test_every_point_has_its_forecast_and_its_measurement(swept) -> None:
    result, _ = swept
    assert [(row["init_scale"], row["lr"]) for row in result.table] == [
        (0.2, 0.01),
        (0.2, 0.03),
        (3.0, 0.01),
        (3.0, 0.03),
    ]
    for row in result.table:
        assert row["error"] is None
        assert row["forecast"] in ("lazy", "delayed-rich", "rich") and row["forecast_ratio"] > 0
        assert row["label"] in ("lazy", "transitional", "rich") and 0 <= row["score"] <= 1
        assert row["distance"] >= 0 and row["growth"] > 0 and math.isfinite(row["loss_end"])
    small, large = result.table[0], result.table[2]
    assert small["forecast_ratio"] > 10 * large["forecast_ratio"]  # a smaller initialisation is richer
    json.dumps(result.table)  # DataFrame-friendly: plain values only


def test_the_report_page_figure_and_table_are_written(swept) -> None:
    result, root = swept
    assert result.files["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = result.files["page"].read_text(encoding="utf-8")
    assert "Phase diagram" in page and "Boundaries" in page and "data:image/png;base64," in page
    assert "init_scale=0.2,lr=0.01" not in page or "<table>" in page
    assert json.loads(result.files["table"].read_text()) == json.loads(json.dumps(result.table, default=str))
    assert (root / "runs" / "init_scale_0.2_lr_0.01" / "regimescope.jsonl").exists()


def _events(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return accumulator


def _hparams(folder: Path) -> list[plugin_data_pb2.HParamsPluginData]:
    contents = _events(folder).PluginTagToContent("hparams")
    return [plugin_data_pb2.HParamsPluginData.FromString(content) for content in contents.values()]


def _experiment(folder: Path) -> api_pb2.Experiment:
    return next(data.experiment for data in _hparams(folder) if data.HasField("experiment"))


def _session_values(folder: Path) -> dict[str, float]:
    session = next(data.session_start_info for data in _hparams(folder) if data.HasField("session_start_info"))
    return {name: value.number_value for name, value in session.hparams.items()}


def test_hparams_entries_hold_the_knobs_and_the_final_metrics(swept) -> None:
    result, root = swept
    experiment = _experiment(root / "runs")
    assert [info.name for info in experiment.hparam_infos] == ["init_scale", "lr"]
    assert "regimescope/sweep/score" in [m.name.tag for m in experiment.metric_infos]
    folder = root / "runs" / "init_scale_3_lr_0.03"
    assert _session_values(folder) == {"init_scale": 3.0, "lr": 0.03}
    score = _events(folder).Scalars("regimescope/sweep/score")[-1]
    assert score.step == _task.STEPS and score.value == pytest.approx(result.table[3]["score"])


def test_a_forecast_only_sweep_writes_its_forecast_as_hparams_entries(tmp_path: Path) -> None:
    result = rs.sweep(_task.make_model, {"init_scale": [0.2, 3.0]}, measure=False, logdir=tmp_path, **_task.arguments())
    tags = [metric.name.tag for metric in _experiment(tmp_path).metric_infos]
    assert tags == ["regimescope/sweep/forecast_ratio", "regimescope/sweep/forecast_fast", "regimescope/sweep/failed"]
    assert result.files["logdir"] == tmp_path and _session_values(tmp_path / "init_scale_3") == {"init_scale": 3.0}
    events = _events(tmp_path / "init_scale_3")
    ratio, failed = events.Scalars(tags[0])[-1], events.Scalars(tags[2])[-1]
    assert ratio.step == 0 and ratio.value == pytest.approx(result.table[1]["forecast_ratio"], rel=1e-6)
    assert failed.value == 0.0 and "regimescope/sweep/score" not in events.Tags()["scalars"]


def test_a_failing_point_is_reported_and_the_sweep_goes_on(tmp_path: Path) -> None:
    result = rs.sweep(_task.failing_model, {"init_scale": [0.5, 10.0]}, logdir=tmp_path, **_task.arguments())
    ok, failed = result.table
    assert ok["error"] is None and ok["score"] is not None
    assert "RuntimeError: this point cannot be built" in failed["error"] and failed["score"] is None
    assert result.failed == [failed]
    assert not (tmp_path / "init_scale_10" / "regimescope.jsonl").exists()


def test_forecast_only_trains_nothing_and_the_engines_agree() -> None:
    forecast = rs.sweep(_task.make_model, {"init_scale": [0.2, 3.0]}, measure=False, **_task.arguments())
    assert forecast.steps is None and all(row.get("score") is None for row in forecast.table)
    inline = rs.sweep(_task.make_model, {"init_scale": [0.2, 3.0]}, **_task.arguments())
    with concurrent.futures.ProcessPoolExecutor(2) as executor:
        given = rs.sweep(_task.make_model, {"init_scale": [0.2, 3.0]}, engine=executor, **_task.arguments())
    pooled = rs.sweep(_task.make_model, {"init_scale": [0.2, 3.0]}, engine="process", workers=2, **_task.arguments())
    for rows in (given.table, pooled.table):
        for row, expected in zip(rows, inline.table):
            assert row["error"] is None
            for key in ("forecast_ratio", "score", "distance", "growth", "loss_end"):
                assert row[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-9), key
    for row, expected in zip(forecast.table, inline.table):
        assert row["forecast_ratio"] == pytest.approx(expected["forecast_ratio"], rel=1e-6)


def test_a_progress_bar_counts_forecasts_and_training_steps() -> None:
    stream = io.StringIO()
    progress = Progress(2 * (1 + _task.STEPS), "sweep", stream=stream, enabled=True)
    rs.sweep(_task.make_model, {"init_scale": [0.2, 3.0]}, progress=progress, **_task.arguments())
    assert progress.done == progress.total and "init_scale=3" in stream.getvalue()


def test_the_package_and_the_function_are_one_callable() -> None:
    import regimescope.sweep as package

    assert callable(package) and callable(rs.sweep)
    result = package(_task.make_model, {"init_scale": [1.0]}, measure=False, **_task.arguments())
    assert result.table[0]["forecast"] is not None


def test_the_point_is_an_optuna_objective() -> None:
    optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install -e '.[optuna]')")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x, y = _task.data()
    task = SweepTask(
        _task.make_model,
        _task.make_optimizer,
        [(x, y)],
        rs.Probe(x, y),
        steps=_task.STEPS,
        monitor_options={"every": 6},
    )
    point = SweepPoint(task, parse_grid({"init_scale": [0.2, 3.0]}))
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.GridSampler({"init_scale": [0.2, 3.0]}))
    study.optimize(point, n_trials=2)
    scores = {trial.params["init_scale"]: trial.value for trial in study.trials}
    assert scores == {value: pytest.approx(point.run({"init_scale": value})["score"]) for value in (0.2, 3.0)}
    assert study.best_trial.user_attrs["label"] in ("lazy", "transitional", "rich")
    with pytest.raises(ValueError, match="needs the grid"):
        SweepPoint(task)(study.ask())


def test_unknown_engines_are_refused_before_training_and_a_bad_factory_fails_its_points() -> None:
    with pytest.raises(ValueError, match="`engine`"):
        rs.sweep(_task.make_model, {"init_scale": [1.0]}, engine="dask", **_task.arguments())
    with concurrent.futures.ThreadPoolExecutor(1) as threads, pytest.raises(TypeError, match="threads share"):
        rs.sweep(_task.make_model, {"init_scale": [1.0]}, engine=threads, **_task.arguments())
    with pytest.raises(ValueError, match="module-level functions"):
        rs.sweep(lambda: _task.make_model(), {"init_scale": [1.0]}, engine="process", **_task.arguments())
    result = rs.sweep(lambda: torch.zeros(1), {"init_scale": [1.0]}, **_task.arguments())
    assert result.table[0]["error"] == "TypeError: make_model returned Tensor; expected a torch.nn.Module."


def test_importing_the_sweep_and_the_knobs_pulls_in_no_optional_framework() -> None:
    heavy = ("tensorboard", "matplotlib", "ray", "optuna", "sklearn")
    code = (
        f"import sys, regimescope.sweep, regimescope.knobs; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_time_to_rich_outlives_the_monitors_bounded_history() -> None:
    """The point reads its metrics from every record as it is written, not from ``monitor.history``, which keeps only
    the last ``history_size`` measurements: with a history of 2 the first rich step is still the one found with a
    full history."""

    def time_to_rich(history_size: int) -> int | None:
        options = {"monitor_options": {"every": 2, "history_size": history_size}, "steps": 40}
        result = rs.sweep(_task.make_model, {"init_scale": [0.2], "lr": [0.2]}, **_task.arguments(**options))
        return result.table[0]["time_to_rich"]

    full = time_to_rich(1000)
    assert full is not None and full < 30  # rich (at step 10 here) well before the last two of 20 measurements
    assert time_to_rich(2) == full
