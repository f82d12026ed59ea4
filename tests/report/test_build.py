"""`build_report` on runs written by a monitor: PNGs, per-run pages, comparison page, errors."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.progress import Progress
from regimescope.report import load_runs
from regimescope.report.build import COMPARISON_FIGURES, RUN_FIGURES, ReportFiles, build_report, slug

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.filterwarnings("ignore::regimescope.alerts.RegimeWarning")


def _write_run(folder: Path, scale: float, seed: int = 0) -> None:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    x = torch.randn(32, 3)
    y = x[:, :1] - 2 * x[:, 1:2]
    with rs.RegimeMonitor(
        model, rs.Probe(x[:16], y[:16]), optimizer=optimizer, logdir=folder, every=10, heatmap_every=100,
        max_overhead=None,
    ):
        for _ in range(40):
            loss = (model(x) - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    _write_run(root / "small", 0.05)
    _write_run(root / "sweep" / "big", 2.0)
    return root


@pytest.fixture(scope="module")
def report(logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportFiles, Progress, Path]:
    out = tmp_path_factory.mktemp("report")
    progress = Progress(0, "report", stream=io.StringIO(), enabled=True)
    return build_report(logdir, out, progress=progress), progress, out


def test_report_writes_every_figure_and_page(report: tuple[ReportFiles, Progress, Path]) -> None:
    files, progress, out = report
    assert sorted(files.pages) == ["small", "sweep/big"]
    assert progress.done == progress.total == len(COMPARISON_FIGURES) + 2 * len(RUN_FIGURES)
    assert len(files.figures) == progress.total
    for path in files.figures:
        assert path.read_bytes().startswith(b"\x89PNG"), path
    assert (out / "sweep__big" / "layers.png") in files.figures
    index = files.index.read_text()
    assert 'href="small.html"' in index and 'href="sweep__big.html"' in index
    assert len(re.findall(r'src="data:image/png;base64,', index)) == len(COMPARISON_FIGURES)
    page = files.pages["small"].read_text()
    assert "regimescope report: small" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(RUN_FIGURES)
    assert "http://" not in page and "https://" not in page  # self-contained


def test_report_lists_the_alerts_of_each_run(logdir: Path, report: tuple[ReportFiles, Progress, Path]) -> None:
    files = report[0]
    runs = {run.name: run for run in load_runs(logdir)}
    assert any(alert.kind == "regime_shift" for alert in runs["small"].alerts)  # small init leaves the lazy regime
    for name, path in files.pages.items():
        page = path.read_text()
        assert page.count("</code></td><td>") == len(runs[name].alerts), name
        for alert in runs[name].alerts:
            assert f"<tr><td>{alert.step}</td><td><code>{alert.kind}</code>" in page


def test_report_of_a_folder_without_runs_says_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="logdir of a RegimeMonitor"):
        build_report(tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "missing", tmp_path / "out")


def test_slug_makes_file_names() -> None:
    assert slug("sweep/lr=0.1") == "sweep__lr_0.1"
