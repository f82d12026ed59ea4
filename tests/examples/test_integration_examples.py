"""The integration examples run end to end in their quick mode and write the regimescope tags."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCORE = "regimescope/regime/score"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _require(module: str, extra: str) -> None:
    pytest.importorskip(module, reason=f"the `{extra}` extra is not installed (pip install -e '.[{extra}]')")


def _score_steps(folder: Path) -> list[int]:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars(SCORE)]


def test_lightning_mnist_like(tmp_path: Path) -> None:
    _require("lightning", "lightning")
    _require("sklearn", "examples")
    verdict = _load("lightning_mnist_like").main(["--quick", "--logdir", str(tmp_path)])
    assert verdict is not None and verdict.step == 8
    (run,) = (tmp_path / "digits").iterdir()
    assert _score_steps(run) == [0, 1, 2, 4, 8]


def test_hf_tiny_bert(tmp_path: Path) -> None:
    _require("transformers", "transformers")
    _require("accelerate", "transformers")
    verdict = _load("hf_tiny_bert").main(["--quick", "--output-dir", str(tmp_path)])
    assert verdict is not None and verdict.step == 4
    assert _score_steps(tmp_path / "regimescope") == [0, 1, 2, 4]


@pytest.mark.parametrize("sharing", [[], ["--split-layers"]], ids=["rank0", "split_layers"])
def test_ddp_under_torchrun_with_two_processes(tmp_path: Path, sharing: list[str]) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(EXAMPLES / "ddp.py"), "--quick", "--logdir", str(tmp_path / "run"), *sharing]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = sorted(line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("rank "))
    assert len(verdicts) == 2 and verdicts[0] == verdicts[1]
    assert _score_steps(tmp_path / "run") == [0, 1, 2, 4, 8]
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "run").iterdir()) == ["events", "regimescope"]
