"""`build_report` on runs written by a monitor: PNGs, per-run pages, comparison page, errors."""

from __future__ import annotations

import io
import logging
import re
import warnings
from pathlib import Path

import pytest

from regimescope.progress import Progress
from regimescope.report import load_runs
from regimescope.report.build import COMPARISON_FIGURES, RUN_FIGURES, ReportFiles, build_report, slug
from regimescope.report.figures import top_movers
from regimescope.report.html import markdown_html
from tests._dashboard_runs import PAUSED, RUNS, shared_runs
from tests.tensorboard_plugin._chromium import count_color, find_chromium, screenshot

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.filterwarnings("ignore::regimescope.alerts.RegimeWarning")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def report(logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportFiles, Progress, Path]:
    """The report, built with every warning an error and every log record at WARNING or above counted."""
    out = tmp_path_factory.mktemp("report")
    progress = Progress(0, "report", stream=io.StringIO(), enabled=True)
    handler = _Collect(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            files = build_report(logdir, out, progress=progress)
    finally:
        logging.getLogger().removeHandler(handler)
    assert handler.records == []  # e.g. matplotlib's "No artists with labels found to put in legend"
    return files, progress, out


class _Collect(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


def test_report_writes_every_figure_and_page(report: tuple[ReportFiles, Progress, Path]) -> None:
    files, progress, out = report
    assert sorted(files.pages) == list(RUNS)
    measured = len(RUNS) - 1  # the run that paused at step 0 has no figure
    assert progress.done == progress.total == len(COMPARISON_FIGURES) + measured * len(RUN_FIGURES)
    assert len(files.figures) == progress.total
    for path in files.figures:
        assert path.read_bytes().startswith(b"\x89PNG"), path
    assert (out / "mlp__rich" / "layers.png") in files.figures
    index = files.index.read_text()
    assert 'href="mlp__rich.html"' in index and 'href="resnet.html"' in index
    assert len(re.findall(r'src="data:image/png;base64,', index)) == len(COMPARISON_FIGURES)
    page = files.pages["mlp/rich"].read_text()
    assert "regimescope report: mlp/rich" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == len(RUN_FIGURES)
    assert "http://" not in page and "https://" not in page  # self-contained


def test_report_lists_the_alerts_of_each_run(logdir: Path, report: tuple[ReportFiles, Progress, Path]) -> None:
    files = report[0]
    runs = {run.name: run for run in load_runs(logdir)}
    assert any(alert.kind == "regime_shift" for alert in runs["mlp/rich"].alerts)  # small init leaves the lazy regime
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


def test_report_explains_the_verdict_with_forecast_and_diagnosis(
    logdir: Path, report: tuple[ReportFiles, Progress, Path]
) -> None:
    run = next(run for run in load_runs(logdir) if run.name == "mlp/rich")
    page = report[0].pages["mlp/rich"].read_text()
    for title, text_tag in (("Why this verdict", "explanation"), ("Conservation diagnosis", "diagnosis")):
        tag = next(name for name in run.texts if name.endswith(f"/{text_tag}"))
        step, text = run.texts[tag][-1]
        assert f"<h2>{title} (step {step})</h2>" in page
        assert markdown_html(text) in page
    assert "<h2>Forecast at step 0</h2>" in page and "forecast at step 0: rich</strong></p><ul><li>" in page
    assert page.index("Why this verdict") < page.index("<h2>Alerts</h2>") < page.index("<h2>Verdict timeline</h2>")


def test_a_paused_run_is_reported_with_its_error(report: tuple[ReportFiles, Progress, Path]) -> None:
    files = report[0]
    page = files.pages[PAUSED].read_text()
    failure = '<p class="failure">Measuring paused at step 0: measurement failed (RuntimeError: CUDA out of memory.'
    assert failure in page
    row = re.search(r"<tr><td><a href=\"[^\"]*paused.html\">.*?</tr>", files.index.read_text()).group(0)
    assert "measuring paused" in row
    assert "<img" not in page  # nothing was measured: no empty figure


def test_markdown_is_escaped_and_lists_need_no_blank_line() -> None:
    html = markdown_html("**head** <script>\n- item with `a<b>`\n- two\n\nafter")
    assert html == (
        "<p><strong>head</strong> &lt;script&gt;</p><ul><li>item with <code>a&lt;b&gt;</code></li><li>two</li></ul>"
        "<p>after</p>"
    )


def test_per_layer_panels_name_the_layers_that_moved_most(logdir: Path) -> None:
    resnet = next(run for run in load_runs(logdir) if run.name == "resnet")
    lines = {layer: s for layer, s in resnet.panels()["weights/relative_change"].items() if layer}
    assert len(lines) == 41
    top = top_movers(lines)
    assert len(top) == 8
    final = {layer: s.values[-1] for layer, s in lines.items()}
    assert min(final[layer] for layer in top) >= sorted(final.values())[-12]  # the movers end among the largest


def test_screenshot_of_a_report_page_shows_the_verdict_and_its_figures(
    report: tuple[ReportFiles, Progress, Path], tmp_path: Path
) -> None:
    """The run page as a browser draws it (``REGIMESCOPE_SCREENSHOTS=docs`` refreshes ``docs/report.png``)."""
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (`make test` runs `apt-get install -y chromium`)")
    page = report[0].pages["mlp/rich"]
    pixels = screenshot(executable, page.as_uri(), "1300,1700", tmp_path / "report.png")
    assert count_color(pixels, (192, 57, 43)) > 12_000  # the rich band of the verdict timeline
    assert count_color(pixels, (46, 134, 193)) > 12_000  # and its lazy start
    assert count_color(pixels, (189, 189, 189)) > 600  # the left rule of the explanation, forecast and diagnosis
