"""The regimescope tab inside a real TensorBoard: listed, serving the demo's runs, and drawn by a real browser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from regimescope.report.run_data import load_runs
from tests.cli._demo_logs import quick_demo
from tests.tensorboard_plugin._chromium import chromium, find_chromium
from tests.tensorboard_plugin._server import get, tensorboard

REPO = Path(__file__).resolve().parents[2]
RUNS = ("balanced", "downstream", "large", "upstream", "wide-ntk")
RICH = (192, 57, 43)
LAZY = (46, 134, 193)


@pytest.fixture(scope="module")
def demo_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("demo") / "logs"
    quick_demo(logdir)
    return logdir


@pytest.fixture(scope="module")
def server(demo_logdir: Path):
    with tensorboard(demo_logdir, expected_runs=len(RUNS)) as base:
        yield base


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


def test_runs_route_returns_the_demo_runs_with_their_verdicts(server: str, demo_logdir: Path) -> None:
    status, body = get(server + "data/plugin/regimescope/runs")
    assert status == 200
    runs = {run["name"]: run for run in json.loads(body)["runs"]}
    assert sorted(runs) == list(RUNS)
    for expected in load_runs(demo_logdir):
        served = runs[expected.name]
        assert (served["label"], served["score"]) == pytest.approx(expected.final())
        assert served["timeline"]["steps"] == expected.timeline()["steps"]
        assert served["alerts"] == len(expected.alerts)


def test_run_route_has_alerts_heat_maps_and_kernel_images(server: str, demo_logdir: Path) -> None:
    status, body = get(server + "data/plugin/regimescope/run?run=balanced")
    assert status == 200
    run = json.loads(body)
    expected = next(r for r in load_runs(demo_logdir) if r.name == "balanced")
    assert [(a["step"], a["kind"], a["message"]) for a in run["alert_list"]] == [
        (a.step, a.kind, a.message) for a in expected.alerts
    ]
    assert any(a["kind"] == "regime_shift" for a in run["alert_list"])  # balanced leaves the lazy start
    distance, balance = run["grids"]
    assert distance["layers"] == ["hidden", "readout"] and balance["layers"] == ["hidden-readout"]
    assert len(distance["values"][0]) == len(distance["steps"]) == len(run["timeline"]["steps"])
    assert run["images"] and run["images"][0]["step"] == 0
    status, png = get(server + "data/plugin/regimescope/" + run["images"][-1]["url"])
    assert status == 200 and png.startswith(b"\x89PNG")
    assert get(server + "data/plugin/regimescope/run?run=missing")[0] == 404
    assert get(server + "data/plugin/regimescope/image?run=balanced&index=99")[0] == 404


@pytest.fixture(scope="module")
def browser() -> str:
    executable = find_chromium()
    if executable is None:
        pytest.skip(
            "Chromium is not installed and could not be installed (`make test` runs `apt-get install -y chromium`)"
        )
    return executable


def test_browser_builds_the_timeline_dom(server: str, browser: str, demo_logdir: Path, tmp_path: Path) -> None:
    result = chromium(browser, tmp_path / "profile", "--dump-dom", server + "data/plugin_entry.html?name=regimescope")
    dom = result.stdout
    assert 'data-ready="true"' in dom, result.stderr[-2000:]
    for name in RUNS:
        assert f'class="rs-timeline" data-run="{name}"' in dom
    assert dom.count('class="rs-band" data-label="rich"') > 30
    assert dom.count('class="rs-band" data-label="lazy"') > 60
    first = load_runs(demo_logdir)[0]  # the dashboard opens the first run's details
    assert dom.count('class="rs-alert"') == len(first.alerts) > 0
    assert dom.count('class="rs-cell"') > 60


def test_screenshot_shows_the_timeline_in_the_tensorboard_tab(server: str, browser: str, tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image")
    shot = tmp_path / "dashboard.png"
    result = chromium(
        browser, tmp_path / "profile", "--window-size=1400,1000", f"--screenshot={shot}", server + "#regimescope"
    )
    assert shot.exists(), result.stderr[-2000:]
    pixels = np.asarray(image_module.open(shot).convert("RGB"), dtype=np.int16)

    def count(color: tuple[int, int, int]) -> int:
        return int((np.abs(pixels - np.array(color)).max(axis=2) <= 6).sum())

    # Two rich and three lazy runs: each band is about 700 x 34 pixels in a 1400 x 1000 window.
    assert count(RICH) > 20_000
    assert count(LAZY) > 40_000
