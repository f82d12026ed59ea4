"""What the monitor costs at its default settings, against plain training, side by side in one process.

Four models, each trained ``--steps`` optimizer steps without and with the monitor, the runs alternating (plain,
monitored, plain, monitored, ... ``--repeats`` times) so that a machine's drift affects both alike:

- ``cnn``: the CNN of ``ntk_speed.py`` (conv32-conv64-dense-10, 60 K parameters) on scikit-learn's digits upscaled
  to 3x32x32, batch 64, AdamW, ``RegimeMonitor``;
- ``resnet18``: torchvision's ResNet-18 layout (11.2 M parameters) on the same images, batch 64, SGD with momentum,
  ``RegimeMonitor``;
- ``gpt2``: Hugging Face ``GPT2LMHeadModel`` from a small config (vocabulary 64, 32 tokens, 2 layers of width 64)
  on synthetic sequences, trained by ``transformers.Trainer`` with ``RegimeTrainerCallback()`` (batch 16);
- ``lm``: a plain-PyTorch pre-norm causal transformer LM (2 layers, width 128, vocabulary 256, 64 tokens), batch 32,
  AdamW, ``RegimeMonitor``.

Every monitor runs at its defaults (``every=100``, ``max_overhead=0.05``, sizing at attach) with a probe of 64
examples and a TensorBoard + JSONL ``logdir``. For each model it prints the median wall time of both kinds of run;
the overhead ``monitored / plain - 1`` of each pair of runs made one after the other (the monitor's attach included),
as the median over the pairs and their range; the monitor's own account of its share of wall time
(``monitor.overhead``, steadier than the difference of two noisy wall times); how much slower the monitored run's
median training step was than its plain pair's (what the monitor's clock cannot see, such as a training step slowed
by the monitor's memory or caches; median and range); the measurements made, the final verdict, the measurement
plan, and ``attach()``'s wall time as a multiple of one plain training step.

Usage::

    python benchmarks/overhead.py [--model cnn --model resnet18 --model gpt2 --model lm] [--steps 300] [--repeats 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models  # noqa: E402

import regimescope as rs  # noqa: E402

PROBE = 64


@dataclass
class Outcome:
    """One run: its wall time, and for a monitored run what the monitor did."""

    seconds: float
    step_seconds: float
    attach_seconds: float = 0.0
    measurements: int = 0
    own_share: float = 0.0
    verdict: str = "-"
    plan: str = "-"

    def describe(self, monitor: rs.RegimeMonitor) -> None:
        """Take what ``monitor`` did: its attach time, measurements, final verdict and measurement plan."""
        self.attach_seconds = monitor.attach_seconds
        self.measurements = len(monitor.history)
        self.own_share = monitor.overhead
        self.verdict = "-" if monitor.regime is None else f"{monitor.regime.label} ({monitor.regime.score:.2f})"
        self.plan = monitor.plan.describe()


def _digits(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits, upscaled to 3x32x32 (repeated to ``count`` examples)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    labels = torch.tensor(digits.target)
    index = torch.arange(count) % len(labels)
    return (images[index] - 0.5) / 0.5, labels[index]


def _sequences(count: int, length: int, vocab: int, seed: int) -> torch.Tensor:
    """Token sequences a model can learn: each a random start and a random stride, modulo ``vocab``."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, vocab, (count, 1), generator=g)
    stride = torch.randint(1, 4, (count, 1), generator=g)
    return (start + stride * torch.arange(length)) % vocab


def _plain_loop(
    model: nn.Module, optimizer: torch.optim.Optimizer, batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int, monitor_factory=None,
) -> Outcome:
    """Train ``steps`` steps; with ``monitor_factory``, attach its monitor first (timed as part of the run)."""
    start = time.perf_counter()
    monitor = None if monitor_factory is None else monitor_factory(model, optimizer).attach()
    step_times = []
    for step in range(steps):
        x, y = batches(step)
        step_start = time.perf_counter()
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - step_start)
    if monitor is not None:
        monitor.close()  # timed: it takes a measurement the budget deferred, as the Trainer callback does
    outcome = Outcome(time.perf_counter() - start, statistics.median(step_times))
    if monitor is not None:
        outcome.describe(monitor)
    return outcome


def _image_run(name: str, monitored: bool, steps: int, logdir: Path) -> Outcome:
    torch.manual_seed(0)
    model = models.cnn() if name == "cnn" else models.TorchvisionResNet18(10)
    images, labels = _digits(64 * 32)
    if name == "cnn":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.arange(step * 64, step * 64 + 64) % len(labels)
        return images[index], labels[index]

    probe = rs.Probe(images[-PROBE:], labels[-PROBE:])
    factory = (lambda m, o: rs.RegimeMonitor(m, probe, optimizer=o, logdir=logdir)) if monitored else None
    return _plain_loop(model, optimizer, batches, F.cross_entropy, steps, factory)


def _lm_run(monitored: bool, steps: int, logdir: Path) -> Outcome:
    torch.manual_seed(0)
    vocab, length = 256, 64
    model = models.GPT(vocab=vocab, positions=length, layers=2, width=128, heads=4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    data = _sequences(32 * 64, length, vocab, seed=1)

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = data[torch.arange(step * 32, step * 32 + 32) % len(data)]
        return rows, rows

    def loss_fn(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1))

    probe = rs.Probe.next_token(_sequences(PROBE, length, vocab, seed=2))
    factory = (lambda m, o: rs.RegimeMonitor(m, probe, optimizer=o, logdir=logdir)) if monitored else None
    return _plain_loop(model, optimizer, batches, loss_fn, steps, factory)


def _gpt2_run(monitored: bool, steps: int, logdir: Path) -> Outcome:
    from regimescope.integrations.transformers import RegimeTrainerCallback
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

    torch.manual_seed(0)
    vocab, length = 64, 32
    config = GPT2Config(vocab_size=vocab, n_positions=length, n_embd=64, n_layer=2, n_head=4)
    model = GPT2LMHeadModel(config)
    tokens = _sequences(16 * steps, length, vocab, seed=1)
    dataset = [{"input_ids": row, "labels": row} for row in tokens]
    step_times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, D102
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, D102
            step_times.append(time.perf_counter() - self._start)

    callback = RegimeTrainerCallback(logdir=logdir) if monitored else None
    arguments = TrainingArguments(
        output_dir=str(logdir / "out"), per_device_train_batch_size=16, max_steps=steps, learning_rate=1e-3,
        report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=dataset,
                      callbacks=[StepClock(), *([callback] if callback else [])])
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    outcome = Outcome(seconds, statistics.median(step_times))
    if callback is not None and callback.monitor is not None:
        outcome.describe(callback.monitor)
    return outcome


def _paired(plain: list[float], monitored: list[float]) -> str:
    """``monitored / plain - 1`` of each pair of runs made one after the other, their median and, for several pairs,
    their range: the machine's drift over a session (plain runs here differed by up to a third among themselves)
    moves both runs of a pair alike, so the ratio within a pair is steadier than the ratio of two medians."""
    ratios = sorted(m / p - 1 for p, m in zip(plain, monitored))
    middle = f"{statistics.median(ratios):+.1%}"
    return middle if len(ratios) == 1 else f"{middle} [{ratios[0]:+.1%}, {ratios[-1]:+.1%}]"


def run(name: str, monitored: bool, steps: int) -> Outcome:
    """One run of ``name``, in a fresh log folder."""
    with tempfile.TemporaryDirectory() as folder:
        logdir = Path(folder)
        if name in ("cnn", "resnet18"):
            return _image_run(name, monitored, steps, logdir)
        if name == "lm":
            return _lm_run(monitored, steps, logdir)
        return _gpt2_run(monitored, steps, logdir)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=["cnn", "resnet18", "gpt2", "lm"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, {args.repeats} repeats")
    print("| model | plain (s) | monitored (s) | overhead | monitor's own clock | median step | measurements | verdict "
          "| attach / step | measurement |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.model or ["cnn", "resnet18", "gpt2", "lm"]:
        plain, monitored = [], []
        for _ in range(args.repeats):
            plain.append(run(name, False, args.steps))
            monitored.append(run(name, True, args.steps))
        p = statistics.median(o.seconds for o in plain)
        m = statistics.median(o.seconds for o in monitored)
        last = monitored[-1]
        step = statistics.median(o.step_seconds for o in plain)
        overhead = _paired([o.seconds for o in plain], [o.seconds for o in monitored])
        slower_step = _paired([o.step_seconds for o in plain], [o.step_seconds for o in monitored])
        print(
            f"| {name} | {p:.1f} | {m:.1f} | {overhead} | {last.own_share:.1%} | {slower_step} "
            f"| {last.measurements} | "
            f"{last.verdict} | "
            f"{last.attach_seconds / step:.1f} | {last.plan} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
