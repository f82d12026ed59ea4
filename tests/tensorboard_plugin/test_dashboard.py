"""The regimescope tab inside a real TensorBoard: listed, serving a logdir's runs, and drawn by a real browser.

The logdir is :func:`tests._dashboard_runs.write_runs`'s: a rich and a lazy MLP, a ResNet-18-like model and a run
whose monitor paused at its first measurement. ``REGIMESCOPE_SCREENSHOTS=docs`` refreshes ``docs/dashboard.png``
(see ``_chromium.py``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from regimescope.report.html import markdown_html
from regimescope.report.run_data import load_runs
from tests._dashboard_runs import PAUSED, RUNS, shared_runs
from tests.tensorboard_plugin._chromium import chromium, count_color, find_chromium, screenshot
from tests.tensorboard_plugin._server import get, tensorboard

REPO = Path(__file__).resolve().parents[2]
RICH = (192, 57, 43)
LAZY = (46, 134, 193)
TRANSITIONAL = (241, 196, 15)
PAUSED_FILL = (251, 233, 231)
pytestmark = pytest.mark.filterwarnings("ignore::regimescope.alerts.RegimeWarning")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def server(logdir: Path):
    with tensorboard(logdir, expected_runs=len(RUNS)) as base:
        yield base


def _json(url: str) -> dict:
    status, body = get(url)
    assert status == 200, body[:500]
    return json.loads(body)


def test_importing_the_plugin_leaves_torch_out() -> None:
    code = (
        "import sys\n"
        "import regimescope.tensorboard_plugin.loader, regimescope.tensorboard_plugin.plugin\n"
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"


def test_a_broken_plugin_never_breaks_tensorboard(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tensorboard.plugins import base_plugin

    from regimescope.tensorboard_plugin.loader import RegimescopeLoader

    monkeypatch.setitem(sys.modules, "regimescope.tensorboard_plugin.plugin", None)
    assert RegimescopeLoader().load(base_plugin.TBContext()) is None
    assert "regimescope tab is left out" in caplog.text


def test_plugin_is_listed_as_an_iframed_tab(server: str) -> None:
    status, body = get(server + "data/plugins_listing")
    assert status == 200
    entry = json.loads(body)["regimescope"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "regimescope"
    assert entry["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/regimescope/index.js"}
    status, script = get(server + "data/plugin/regimescope/index.js")
    assert status == 200 and b"export async function render" in script


def test_runs_route_lists_every_run_with_its_verdict_or_its_error(server: str, logdir: Path) -> None:
    runs = {run["name"]: run for run in _json(server + "data/plugin/regimescope/runs")["runs"]}
    assert sorted(runs) == list(RUNS)
    for expected in load_runs(logdir):
        served = runs[expected.name]
        assert served["timeline"]["steps"] == expected.timeline()["steps"]
        assert served["alerts"] == len(expected.alerts)
        if expected.final() is not None:
            assert (served["label"], served["score"]) == pytest.approx(expected.final())
            assert {k["metric"] for k in served["kernel"]} >= {"distance_from_init", "relative_change", "velocity"}
    paused = runs[PAUSED]
    assert paused["label"] is None and paused["kernel"] == []
    assert paused["failure"]["step"] == 0
    assert "CUDA out of memory" in paused["failure"]["message"]
    assert runs["mlp/rich"]["label"] == "rich" and runs["mlp/lazy"]["label"] == "lazy"


def test_run_route_has_notes_alerts_heat_maps_and_kernel_images(server: str, logdir: Path) -> None:
    run = _json(server + "data/plugin/regimescope/run?run=mlp/rich")
    expected = next(r for r in load_runs(logdir) if r.name == "mlp/rich")
    assert [(a["step"], a["kind"], a["message"]) for a in run["alert_list"]] == [
        (a.step, a.kind, a.message) for a in expected.alerts
    ]
    assert any(a["kind"] == "regime_shift" for a in run["alert_list"])
    notes = {note["title"].split(" (")[0]: note["html"] for note in run["notes"]}
    assert sorted(notes) == ["Conservation diagnosis", "Forecast at step 0", "Why this verdict"]
    explanation = expected.texts["regimescope/regime/explanation"][-1][1]
    assert notes["Why this verdict"] == markdown_html(explanation)  # TensorBoard's copy reads as the JSONL's
    assert "<ul><li>" in notes["Forecast at step 0"]
    distance, balance = run["grids"]
    assert distance["layers"] == ["0", "2"] and balance["layers"] == ["0-2"]
    assert len(distance["values"][0]) == len(distance["steps"]) == len(run["timeline"]["steps"])
    assert run["images"] and run["images"][0]["step"] == 0
    status, png = get(server + "data/plugin/regimescope/" + run["images"][-1]["url"])
    assert status == 200 and png.startswith(b"\x89PNG")
    assert get(server + "data/plugin/regimescope/run?run=missing")[0] == 404
    assert get(server + "data/plugin/regimescope/image?run=mlp/rich&index=99")[0] == 404


def test_a_resnet_gets_a_per_block_heat_map(server: str) -> None:
    run = _json(server + "data/plugin/regimescope/run?run=resnet")
    blocks, layers, _ = run["grids"]
    assert "per block" in blocks["title"] and len(blocks["layers"]) == 11
    assert len(layers["layers"]) == 41 and "layer2.0.downsample.0" in layers["layers"]


def test_a_paused_run_is_served_with_its_error(server: str) -> None:
    run = _json(server + "data/plugin/regimescope/run?" + "run=" + PAUSED)
    assert run["failure"]["step"] == 0 and run["alert_list"][0]["kind"] == "note"
    assert run["grids"][0]["layers"] == []


def test_text_tab_renders_the_bullets_as_a_list(server: str) -> None:
    """TensorBoard renders text with Python-Markdown, which needs a blank line before a list (the sink adds it)."""
    for tag in ("regimescope/regime/explanation", "regimescope/regime/forecast", "regimescope/conservation/diagnosis"):
        entries = _json(server + f"data/plugin/text/text?run=mlp/rich&tag={tag}/text_summary")
        html = entries[-1]["text"]
        assert "<ul>" in html and "<li>" in html, (tag, html[:300])
        assert "</strong>\n- " not in html


@pytest.fixture(scope="module")
def browser() -> str:
    executable = find_chromium()
    if executable is None:
        pytest.skip(
            "Chromium is not installed and could not be installed (`make test` runs `apt-get install -y chromium`)"
        )
    return executable


@pytest.fixture(scope="module")
def dom(server: str, browser: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    profile = tmp_path_factory.mktemp("profile")
    result = chromium(browser, profile, "--dump-dom", server + "data/plugin_entry.html?name=regimescope&run=resnet")
    assert 'data-ready="true"' in result.stdout, result.stderr[-2000:]
    return result.stdout


def _band_left(dom: str, run: str, step: int) -> float:
    """The x where the band of ``run``'s measurement at ``step`` starts."""
    svg = re.search(rf'<svg class="rs-timeline" data-run="{re.escape(run)}".*?</svg>', dom, re.S).group(0)
    match = re.search(rf'<rect class="rs-band"[^>]* x="([0-9.e-]+)"[^>]*><title>{re.escape(run)}, step {step}:', svg)
    return float(match.group(1))


def test_browser_draws_every_run_on_one_step_axis(dom: str) -> None:
    for name in RUNS:
        assert f'class="rs-timeline" data-run="{name}"' in dom
    assert dom.count('class="rs-band" data-label="rich"') >= 6
    # mlp/rich runs 96 steps, resnet 8: on one axis their step-4 bands start at the same x.
    assert _band_left(dom, "mlp/rich", 4) == pytest.approx(_band_left(dom, "resnet", 4))
    assert _band_left(dom, "mlp/rich", 4) > 0


def test_browser_shows_the_paused_run_with_its_error(dom: str) -> None:
    assert f'title="{PAUSED}">{PAUSED}</div>' in dom  # the full name, not cut
    assert "measuring paused at step 0" in dom
    assert "paused at step 0: measurement failed (RuntimeError: CUDA out of memory." in dom


def test_browser_draws_one_kernel_chart_per_quantity_with_log_axes(dom: str) -> None:
    charts = dict(re.findall(r'<svg class="rs-chart" data-title="([^"]+)" data-log="(true|false)"', dom))
    assert charts["kernel distance S(K0, Kt)"] == "true"  # 1e-7 (lazy) to 0.3 (rich)
    assert charts["|Kt - K0| / |K0|"] == "true"
    assert charts["kernel-target alignment"] == "false"
    assert len(charts) == 6


def test_browser_heat_maps_have_color_scales_and_full_layer_names(dom: str) -> None:
    assert dom.count('class="rs-colorbar"') == 3
    assert "S, log scale: 0 lazy, towards 1 rich" in dom and "rho: -1 downstream, 0 balanced, +1 upstream" in dom
    assert "<title>layer2.0.downsample.0</title>" in dom
    assert dom.count('class="rs-cell"') >= 41 * 5
    assert "Why this verdict (step 8)" in dom and "forecast at step 0" in dom


def test_screenshot_of_the_tab_shows_every_run(server: str, browser: str, tmp_path: Path) -> None:
    url = server + "data/plugin_entry.html?name=regimescope&run=mlp/rich"
    pixels = screenshot(browser, url, "1400,1800", tmp_path / "dashboard.png")
    # Three timelines about 700 x 34 pixels: mlp/rich mostly rich, mlp/lazy all lazy, resnet in whichever bands
    # its run reaches (its labels depend on the run, not on the tab).
    assert count_color(pixels, RICH) > 8_000
    assert count_color(pixels, LAZY) > 20_000
    assert count_color(pixels, RICH) + count_color(pixels, LAZY) + count_color(pixels, TRANSITIONAL) > 50_000
    assert count_color(pixels, PAUSED_FILL) > 10_000  # the paused run's row
