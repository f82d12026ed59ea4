"""`regimescope report` on the demo's logdir: PNGs and HTML pages holding the demo's runs."""

from __future__ import annotations

import re
import warnings
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from regimescope.cli.main import main
from tests.cli._demo_logs import quick_demo

pytest.importorskip("matplotlib")
RUNS = ("balanced", "downstream", "large", "upstream", "wide-ntk")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    logdir = tmp_path_factory.mktemp("demo") / "logs"
    out = tmp_path_factory.mktemp("report")
    quick_demo(logdir)
    printed = StringIO()
    with redirect_stdout(printed), warnings.catch_warnings():
        warnings.simplefilter("error")  # a fresh clone's first report prints no warning
        assert main(["report", str(logdir), "--out", str(out)]) == 0
    return logdir, out, printed.getvalue()


def test_report_writes_pngs_and_html_for_every_demo_run(demo_report: tuple[Path, Path, str]) -> None:
    _, out, printed = demo_report
    assert f"Report of {len(RUNS)} run(s) written to {out}" in printed
    index = (out / "index.html").read_text()
    for run in RUNS:
        page = (out / f"{run}.html").read_text()
        assert f"<title>regimescope report: {run}</title>" in page
        assert f'href="{run}.html"' in index
        assert "<h2>Why this verdict (step " in page and "<h2>Forecast at step 0</h2>" in page
        for figure in ("timeline", "kernel", "families", "layers", "cost"):
            assert (out / run / f"{figure}.png").read_bytes().startswith(b"\x89PNG"), (run, figure)
    for figure in ("timeline", "kernel", "cost"):
        assert (out / f"{figure}.png").read_bytes().startswith(b"\x89PNG")
    rows = re.findall(r'<tr><td><a href="([^"]+)\.html">', index)
    assert rows == list(RUNS)


def test_report_defaults_to_a_folder_inside_the_logdir(demo_report: tuple[Path, Path, str], tmp_path: Path) -> None:
    logdir = demo_report[0]
    with redirect_stdout(StringIO()):
        assert main(["report", str(logdir / "large")]) == 0
    assert (logdir / "large" / "report" / "index.html").is_file()


def test_report_on_a_folder_without_runs_exits_2_with_the_fix(tmp_path: Path) -> None:
    errors = StringIO()
    with redirect_stderr(errors):
        assert main(["report", str(tmp_path)]) == 2
    assert "logdir of a RegimeMonitor" in errors.getvalue()
