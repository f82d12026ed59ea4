"""A monitor state resumed by another run is refused at attach() with the fix: another initialisation, another width,
another probe, the same probe in another dtype. A larger probe whose measured examples are the saved ones resumes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

import regimescope as rs
from tests._models import mlp
from tests.robustness._logs import fresh, monitor, steps, task_probe, train

FIX = (
    r"This monitor state cannot be resumed here: {}.*\. Load the model weights saved with it \(the same checkpoint\) "
    r"before `attach\(\)`, with the same probe; or start the monitor afresh without `load_state_dict`"
)


@pytest.fixture(scope="module")
def saved() -> dict[str, Any]:
    """The model weights and monitor state of a run checkpointed at step 8, on the first 8 examples."""
    model, optimizer = fresh()
    mon = monitor(model, optimizer).attach()
    train(model, optimizer, 8)
    checkpoint = copy.deepcopy({"model": model.state_dict(), "monitor": mon.state_dict()})
    mon.close()
    return checkpoint


def _reinitialised(seed: int) -> nn.Module:
    model = mlp()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in model:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
    return model


def _wider() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def _resumed(saved: dict[str, Any], model: nn.Module | None = None, probe: rs.Probe | None = None) -> rs.RegimeMonitor:
    """A monitor of ``model`` (default: the checkpointed one), the checkpoint's state loaded, not attached yet."""
    if model is None:
        model = mlp()
        model.load_state_dict(saved["model"])
    mon = monitor(model, torch.optim.SGD(model.parameters(), lr=0.1), probe)
    mon.load_state_dict(saved["monitor"])
    return mon


def _float64(saved: dict[str, Any]) -> tuple[nn.Module, rs.Probe]:
    model = mlp()
    model.load_state_dict(saved["model"])
    probe = task_probe()
    return model.double(), rs.Probe(probe.inputs.double(), probe.targets.double())


CASES = {
    "another_init": (
        lambda s: (_reinitialised(1), None),
        r"the model's weights are not those saved with it \(`0\.weight` differs\): it belongs to another run",
    ),
    "another_width": (lambda s: (_wider(), None), r"it was saved for another model \(`0\.bias` changed shape\)"),
    "another_probe": (
        lambda s: (None, task_probe(slice(8, 16))),
        r"it was saved with another probe \(other examples of the same shapes\)",
    ),
    "a_smaller_probe": (
        lambda s: (None, task_probe(slice(0, 4))),
        r"it was saved with a probe of 8 examples, this one has 4",
    ),
    "another_dtype": (
        _float64,
        (
            r"it was saved with a probe in torch\.float32, torch\.float32, this one is in torch\.float64, "
            r"torch\.float64 \(a probe in another dtype is another probe"
        ),
    ),
}
"""Each way a state can belong to another run: what to build instead of the checkpointed model (``None``: the
checkpointed one) and probe (``None``: the saved one), and the clause of the refusal naming the difference."""


@pytest.mark.parametrize("case", list(CASES))
def test_the_state_of_another_run_is_refused_at_attach_with_the_fix(saved: dict[str, Any], case: str) -> None:
    build, problem = CASES[case]
    model, probe = build(saved)
    mon = _resumed(saved, model, probe)
    with pytest.raises(ValueError, match=FIX.format(problem)):
        mon.attach()
    with pytest.raises(RuntimeError, match=r"Call `monitor.attach\(\)` before"):
        mon.step(9)  # not attached: no optimizer hook, nothing measured
    assert mon.history == []


def test_an_attached_monitor_refuses_another_runs_state_and_keeps_its_own(saved: dict[str, Any]) -> None:
    model = _reinitialised(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = monitor(model, optimizer).attach()
    own = copy.deepcopy(mon.state_dict()["init"])
    with pytest.raises(ValueError, match=FIX.format(r"the model's weights are not those saved with it")):
        mon.load_state_dict(saved["monitor"])
    train(model, optimizer, 8)
    mon.close()
    assert steps(mon.history) == [0, 1, 2, 4, 8] and not mon.paused
    torch.testing.assert_close(mon.state_dict()["init"], own, rtol=0, atol=0)


def test_the_same_run_resumes_and_a_larger_probe_measures_the_saved_examples(saved: dict[str, Any]) -> None:
    """A 12-example probe resuming the state of the 8-example one is accepted, on purpose: the state carries the
    measurement plan (the first 8 examples of the probe), and the fingerprint is taken on the examples measured, which
    are the saved ones, so every comparison with step 0 is on the same inputs; the 4 extra examples are never used."""
    for probe in (None, task_probe(slice(0, 12))):
        mon = _resumed(saved, probe=probe).attach()
        assert mon.plan.examples == 8 and not mon.paused
        torch.testing.assert_close(mon.state_dict()["init"], saved["monitor"]["init"], rtol=0, atol=0)
        mon.measure(9)
        assert not mon.paused and "regimescope/kernel/distance_from_init" in mon.history[-1].scalars
        mon.close()
