"""End-to-end behaviour of RegimeMonitor: schedule, records, verdict, alerts, TensorBoard, resume."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

import regimescope as rs
from regimescope.alerts import RegimeShift
from regimescope.sinks import read_jsonl

DESIGN_TAGS = [
    "regimescope/regime/score",
    "regimescope/regime/label",
    "regimescope/kernel/distance_from_init",
    "regimescope/kernel/relative_change",
    "regimescope/kernel/target_alignment",
    "regimescope/kernel/effective_rank",
    "regimescope/cost/seconds",
]


def _setup(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer, rs.Probe, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(64, 5)
    y = (x[:, :3] > 0).long().sum(1) % 3
    return model, optimizer, rs.Probe(x[:16], y[:16]), x, y


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_default_schedule_is_log_spaced_then_regular() -> None:
    schedule = rs.LogThenEvery(10)
    assert [s for s in range(41) if schedule(s)] == [0, 1, 2, 4, 8, 10, 20, 30, 40]
    assert [s for s in range(41) if rs.LogThenEvery(10, early=False)(s)] == [0, 10, 20, 30, 40]


def test_tensorboard_event_files_hold_design_tags(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, optimizer, probe, x, y = _setup()
    with rs.RegimeMonitor(model, probe, optimizer=optimizer, logdir=tmp_path, every=5, heatmap_every=2, max_overhead=None) as monitor:
        _train(model, optimizer, x, y, 20)
        measured = [r.step for r in monitor.history]
    assert measured == [0, 1, 2, 4, 5, 10, 15, 20]
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
    events.Reload()
    scalar_tags = events.Tags()["scalars"]
    for name in DESIGN_TAGS:
        assert name in scalar_tags, name
        assert [e.step for e in events.Scalars(name)] == measured
    per_layer = [t for t in scalar_tags if t.startswith("regimescope/kernel/distance_from_init/")]
    assert sorted(per_layer) == [f"regimescope/kernel/distance_from_init/{i}" for i in ("0", "2", "4")]
    assert [e.step for e in events.Scalars("regimescope/kernel/velocity")] == measured[1:]
    for family in ("balance", "balance_drift"):
        assert f"regimescope/{family}/0-2" in scalar_tags
    for family in ("weights/relative_change", "representation/cka_to_init", "representation/target_alignment",
                   "activations/pattern_change"):
        assert any(t.startswith(f"regimescope/{family}/") for t in scalar_tags), family
    assert events.Tags()["histograms"]
    assert [e.step for e in events.Images("regimescope/kernel/heatmap")] == measured[::2]
    records = read_jsonl(tmp_path / "regimescope.jsonl")
    assert [r.step for r in records] == measured
    assert records[3].scalars == pytest.approx(monitor.history[3].scalars)


def test_kernel_distance_matches_functional_core() -> None:
    model, optimizer, probe, x, y = _setup()
    k0 = rs.empirical_ntk(model, probe.inputs, dtype=torch.float64)
    monitor = rs.RegimeMonitor(model, probe, optimizer=optimizer, every=10, dtype=torch.float64, max_overhead=None).attach()
    _train(model, optimizer, x, y, 10)
    k10 = rs.empirical_ntk(model, probe.inputs, dtype=torch.float64)
    last = monitor.history[-1]
    assert last.step == 10
    assert last.scalars["regimescope/kernel/distance_from_init"] == pytest.approx(float(rs.kernel_distance(k0, k10)), rel=1e-9)
    assert last.scalars["regimescope/kernel/relative_change"] == pytest.approx(float(rs.relative_change(k10, k0)), rel=1e-9)
    assert monitor.regime.step == 10
    monitor.close()


def test_label_change_is_an_alert_everywhere(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.05)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 4)
    y = x[:, :1] * 2.0 - x[:, 1:2]
    received = []
    sink = rs.MemorySink()
    monitor = rs.RegimeMonitor(
        model, rs.Probe(x[:16], y[:16]), optimizer=optimizer, sinks=[sink], every=20, on_alert=received.append,
        alert_rules=[RegimeShift()], max_overhead=None,
    ).attach()
    with caplog.at_level("INFO", logger="regimescope.alerts"):
        for _ in range(300):
            loss = (model(x) - y).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    labels = [r.scalars["regimescope/regime/label"] for r in monitor.history]
    changes = sum(a != b for a, b in zip(labels, labels[1:]))
    assert monitor.regime.label == "rich"
    assert changes >= 1
    assert len(received) == changes
    assert all(a.kind == "regime_shift" for a in received)
    assert len(sink.texts("regimescope/alerts")[0]) == changes
    assert len([r for r in caplog.records if "regime_shift" in r.getMessage()]) == changes
    monitor.close()


def _reloaded(state: dict) -> dict:
    """``state`` after ``torch.save`` and a ``weights_only`` load, as the framework callbacks reload it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_resume_continues_every_curve_alert_and_the_forecast() -> None:
    model, optimizer, probe, x, y = _setup()
    full = rs.RegimeMonitor(model, probe, optimizer=optimizer, every=5, max_overhead=None).attach()
    _train(model, optimizer, x, y, 10)
    state = _reloaded(full.state_dict())
    checkpoint = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    _train(model, optimizer, x, y, 15)
    full.close()

    resumed_model, resumed_opt, _, _, _ = _setup(seed=1)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optimizer"])
    monitor = rs.RegimeMonitor(resumed_model, probe, optimizer=resumed_opt, every=5, max_overhead=None)
    monitor.load_state_dict(state)
    monitor.attach()
    _train(resumed_model, resumed_opt, x, y, 15)
    assert [r.step for r in monitor.history] == [15, 20, 25]  # the history starts at the resume (the JSONL has all)
    assert [r.step for r in full.history][-3:] == [15, 20, 25]
    assert monitor.forecast == full.forecast and monitor.forecast is not None
    for resumed, uninterrupted in zip(monitor.history, full.history[-3:], strict=True):
        curves = {name for name in uninterrupted.scalars if not name.startswith("regimescope/cost/")}
        assert curves == {name for name in resumed.scalars if not name.startswith("regimescope/cost/")}
        assert any(name.startswith("regimescope/noise/") for name in curves)
        for name in curves:
            assert resumed.scalars[name] == pytest.approx(uninterrupted.scalars[name], rel=1e-5, abs=1e-7), name
        assert resumed.texts.get("regimescope/alerts") == uninterrupted.texts.get("regimescope/alerts")
    monitor.close()


def test_manual_steps_without_optimizer() -> None:
    model, optimizer, probe, x, y = _setup()
    monitor = rs.RegimeMonitor(model, probe, every=3, max_overhead=None).attach()
    for step in range(1, 7):
        _train(model, optimizer, x, y, 1)
        monitor.step(step)
    assert [r.step for r in monitor.history] == [0, 1, 2, 3, 6]
    assert monitor.step(6) is None
    monitor.close()
    assert monitor.step(7) is None  # a closed monitor measures nothing, and says so only when asked directly
    with pytest.raises(RuntimeError, match="closed"):
        monitor.measure(7)
    with pytest.raises(RuntimeError, match="closed"):
        monitor.attach()
    assert [r.step for r in monitor.history] == [0, 1, 2, 3, 6]
    monitor.close()
    with pytest.raises(RuntimeError, match="attach"):
        rs.RegimeMonitor(model, probe, every=3).step(1)


def test_explain_with_advice_names_a_knob_and_leaves_the_live_model_alone() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 4)
    y = x[:, :1] - 2 * x[:, 1:2]
    monitor = rs.RegimeMonitor(model, rs.Probe(x, y), optimizer=optimizer, every=5, max_overhead=None).attach()
    _train(model, optimizer, x, y, 5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    text = monitor.explain(advice=True)
    advice = monitor.advise()
    assert text.endswith(f"- {advice.text}")  # its content is checked against theory in tests/knobs
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    assert advice.text not in monitor.explain()
    monitor.close()
