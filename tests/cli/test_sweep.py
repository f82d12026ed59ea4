"""``regimescope sweep TARGET --grid ...``: a target file's task swept from the command line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from regimescope.cli.main import main
from regimescope.cli.sweep import load_target, parse_option
from tests.sweep._ray import ray_tmpdir  # noqa: F401  (the fixture)

TARGET = """
import torch
from torch import nn

import regimescope as rs


def make_model():
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))


def make_optimizer(model, lr=0.05):
    return torch.optim.SGD(model.parameters(), lr=lr)


def task():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=generator)
    y = x[:, :1].cos()
    return {"make_model": make_model, "make_optimizer": make_optimizer, "data": [(x, y)], "probe": rs.Probe(x, y),
            "steps": 8, "monitor_options": {"every": 4}, "grid": {"lr": [0.05]}}


def not_a_dict():
    return 3
"""


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "mytask.py"
    path.write_text(textwrap.dedent(TARGET), encoding="utf-8")
    return path


def test_the_command_writes_the_diagram_page_table_and_hparams(target: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")
    logdir = tmp_path / "runs"
    status = main(["sweep", f"{target}:task", "--grid", "init_scale=0.3:3:2", "--logdir", str(logdir)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "init_scale" in out and "forecast" in out and "HPARAMS" in out
    rows = json.loads((logdir / "report" / "points.json").read_text())
    assert [(row["init_scale"], row["lr"]) for row in rows] == [(0.3, 0.05), (3.0, 0.05)]
    assert all(row["error"] is None and row["score"] is not None for row in rows)
    assert (logdir / "report" / "phase_diagram.png").exists() and (logdir / "report" / "index.html").exists()


def _swept_rows(target: Path, logdir: Path, capsys, *options: str) -> list[dict]:
    """Sweep ``init_scale`` 0.3 and 3 of the target file with ``options``; the rows of points.json."""
    status = main(["sweep", f"{target}:task", "--grid", "init_scale=0.3,3", "--logdir", str(logdir), *options])
    out = capsys.readouterr().out
    assert status == 0, out
    return json.loads((logdir / "report" / "points.json").read_text())


def test_the_engines_run_a_file_target_like_the_inline_engine(target: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")
    inline = _swept_rows(target, tmp_path / "inline", capsys)
    pooled = _swept_rows(target, tmp_path / "process", capsys, "--engine", "process", "--workers", "2")
    assert [row["error"] for row in pooled] == [None, None]
    assert [row["score"] for row in pooled] == pytest.approx([row["score"] for row in inline], rel=1e-4)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_tmpdir")
def test_the_ray_engine_runs_a_file_target_with_ray_options(target: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")
    inline = _swept_rows(target, tmp_path / "inline", capsys)
    options = ["--engine", "ray", "--ray-option", "num_cpus=1", "--ray-option", "max_concurrent_trials=1"]
    rows = _swept_rows(target, tmp_path / "ray", capsys, *options)
    assert [row["error"] for row in rows] == [None, None]  # the workers received the file's code
    assert [row["score"] for row in rows] == pytest.approx([row["score"] for row in inline], rel=1e-4)
    assert main(["sweep", f"{target}:task", "--engine", "ray", "--ray-option", "colour=red"]) == 2
    assert "Unknown Ray option(s) ['colour']" in capsys.readouterr().err


def test_ray_options_are_python_literals_or_text() -> None:
    assert parse_option("num_cpus=4") == ("num_cpus", 4)
    assert parse_option(" time_budget_s = 2.5") == ("time_budget_s", 2.5)
    assert parse_option("reuse_actors=True") == ("reuse_actors", True)
    assert parse_option("address=auto") == ("address", "auto")


def test_forecast_only_trains_nothing(target: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib", reason="the `report` extra is not installed (pip install -e '.[report]')")
    status = main(["sweep", f"{target}:task", "--grid", "balance=0.5", "--forecast-only", "--logdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0 and "balance" in out and "failed" not in out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["{target}:nowhere"], "has no callable 'nowhere'"),
        (["{target}:not_a_dict"], "expected a dict"),
        (["{target}"], "module:function"),
        (["{target}:task", "--grid", "init_scale"], "KNOB=VALUES"),
        (["{target}:task", "--grid", "depth=1,2"], "no built-in knob"),
        (["{target}:task", "--engine", "ray", "--ray-option", "num_cpus"], "--ray-option takes KEY=VALUE"),
        (["{target}:task", "--ray-option", "num_cpus=1"], "--ray-option applies to --engine ray only"),
        (["missing_module_xyz:task"], "Could not load"),
    ],
)
def test_mistakes_are_reported_with_the_fix(target: Path, tmp_path: Path, capsys, arguments, message: str) -> None:
    argv = ["sweep", *(a.format(target=target) for a in arguments), "--logdir", str(tmp_path)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_module_target_is_imported_by_name() -> None:
    assert load_target("regimescope.scenarios:make_student").__name__ == "make_student"
