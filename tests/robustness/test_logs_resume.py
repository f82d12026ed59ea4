"""Crash at step 27, resume from the step-20 checkpoint: the logs show the run as it was lived, the steps up to the
checkpoint from the crashed session and the resumed session's after it, in JSONL, the report and TensorBoard."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing import event_accumulator

from regimescope.report.run_data import SCORE_TAG, load_runs
from regimescope.sinks import read_jsonl
from tests.robustness._logs import fresh, monitor, read_clean, steps, task, train

CHECKPOINT, CRASH, END = 20, 27, 40
LIVED = [0, 1, 2, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
REPO = Path(__file__).resolve().parents[2]


def _curves(records: list) -> list[str]:
    """Every scalar but the monitor's own timing, as text (NaN compares equal to itself)."""
    return [json.dumps({k: v for k, v in sorted(r.scalars.items()) if "/cost/" not in k}) for r in records]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> list:
    model, optimizer = fresh()
    with monitor(model, optimizer) as mon:
        train(model, optimizer, END)
    return mon.history


def _past_the_checkpoint(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Steps the crashed session ran after its checkpoint, on other batches than the resumed session will see."""
    x, y = task(seed=1)
    for _ in range(CRASH - CHECKPOINT):
        loss = (model(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _resume(checkpoint: dict, logdir: Path) -> None:
    model, optimizer = fresh()
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    resumed = monitor(model, optimizer, logdir=logdir)
    resumed.load_state_dict(checkpoint["monitor"])
    with resumed:
        train(model, optimizer, END - CHECKPOINT)


def test_jsonl_report_and_tensorboard_show_the_run_as_lived(tmp_path: Path, uninterrupted: list) -> None:
    model, optimizer = fresh()
    crashed = monitor(model, optimizer, logdir=tmp_path).attach()
    train(model, optimizer, CHECKPOINT)
    checkpoint = copy.deepcopy(  # as torch.save would keep it
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "monitor": crashed.state_dict()}
    )
    _past_the_checkpoint(model, optimizer)
    crashed.close()  # what a crash at step 27 leaves: every record up to step 24 on disk
    _resume(checkpoint, tmp_path)

    records = read_clean(tmp_path / "regimescope.jsonl")
    assert steps(records) == LIVED
    assert _curves(records) == _curves(uninterrupted)
    everything = read_jsonl(tmp_path / "regimescope.jsonl", as_lived=False)
    assert steps(everything) == LIVED[:9] + LIVED[8:]  # the crashed session's step 24 is still in the file
    assert _curves(everything)[8] != _curves(uninterrupted)[8]

    (run,) = load_runs(tmp_path)
    assert run.scalars[SCORE_TAG].steps == LIVED
    assert run.scalars[SCORE_TAG].values == [r.scalars[SCORE_TAG] for r in uninterrupted]

    accumulator = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    events = accumulator.Scalars(SCORE_TAG)
    assert [e.step for e in events] == LIVED
    assert [e.value for e in events] == pytest.approx([r.scalars[SCORE_TAG] for r in uninterrupted], rel=1e-6)


_CRASHING_RUN = """
import os, signal, sys, torch
torch.set_num_threads(1)
from tests.robustness._logs import fresh, monitor, train
from tests.robustness.test_logs_resume import CHECKPOINT, CRASH, _past_the_checkpoint
logdir, checkpoint = sys.argv[1], sys.argv[2]
model, optimizer = fresh()
mon = monitor(model, optimizer, logdir=logdir).attach()
train(model, optimizer, CHECKPOINT)
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "monitor": mon.state_dict()}, checkpoint)
_past_the_checkpoint(model, optimizer)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_resumed_in_a_new_process_takes_its_logdir_over(tmp_path: Path, uninterrupted: list) -> None:
    logdir, checkpoint = tmp_path / "run", tmp_path / "checkpoint.pt"
    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_RUN, str(logdir), str(checkpoint)], cwd=REPO, capture_output=True, text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert (logdir / "regimescope.jsonl.lock").exists()  # left behind by the killed process
    _resume(torch.load(checkpoint, weights_only=False), logdir)
    records = read_clean(logdir / "regimescope.jsonl")
    assert steps(records) == LIVED
    assert _curves(records) == _curves(uninterrupted)
    assert not (logdir / "regimescope.jsonl.lock").exists()
