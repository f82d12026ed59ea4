"""What the monitor costs at its default settings, against plain training, side by side in one process.

Four models, each trained ``--steps`` optimizer steps without and with the monitor:

- ``cnn``: the CNN of ``ntk_speed.py`` (conv32-conv64-dense-10, 60 K parameters) on scikit-learn's digits upscaled
  to 3x32x32, batch 64, AdamW, ``RegimeMonitor``;
- ``resnet18``: torchvision's ResNet-18 layout (11.2 M parameters) on the same images, batch 64, SGD with momentum,
  ``RegimeMonitor``;
- ``gpt2``: Hugging Face ``GPT2LMHeadModel`` from a small config (vocabulary 64, 32 tokens, 2 layers of width 64)
  on synthetic sequences, trained by ``transformers.Trainer`` with ``RegimeTrainerCallback()`` (batch 16);
- ``lm``: a plain-PyTorch pre-norm causal transformer LM (2 layers, width 128, vocabulary 256, 64 tokens), batch 32,
  AdamW, ``RegimeMonitor``.

The plain and the monitored run of a pair train in lockstep (:mod:`lockstep`): two threads of one process, on one
CPU and one malloc arena, taking turns at every step, each timed on its own turns, so that both see the same
machine; the monitor's clock (:func:`regimescope.budget.now`) counts only the monitored run's turns, as if it ran
alone. Run one after the other instead, identical runs on this 2-core machine differed by up to a third in wall
time, and two plain runs in lockstep differ by 0.1-0.3 %. Before each pair the objects already in the process
are collected and frozen (``gc.freeze()``): a full collection of them cost 60-140 ms here and landed on whichever
run happened to allocate when it was due, either run by chance.

Every monitor runs at its defaults (``every=100``, ``max_overhead=0.05``, sizing at attach) with a probe of 64
examples and a TensorBoard + JSONL ``logdir``. For each model it prints the median time of both kinds of run; the
overhead ``monitored / plain - 1`` of each pair (the monitor's ``attach()`` and ``close()`` included), as the median
over the pairs and their range; the monitor's own account of its overhead (``monitor.overhead``: its seconds over
the training's, what the budget keeps under ``max_overhead``); how much slower the monitored run's median step was
than its plain twin's (a step of the monitored run holds the monitor's per-step work; median and range); the
measurements made, the final verdict, the measurement plan, and ``attach()``'s time as a multiple of one plain step.

Usage::

    python benchmarks/overhead.py [--model cnn --model resnet18 --model gpt2 --model lm] [--steps 300]
        [--repeats 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models  # noqa: E402
from lockstep import Turns, in_lockstep, one_core_one_arena  # noqa: E402

import regimescope as rs  # noqa: E402
from regimescope import budget  # noqa: E402
from regimescope.scenarios.resnet import ResNet18  # noqa: E402

PROBE = 64


@dataclass
class Outcome:
    """One run: its time in its turns, its median turn, and for a monitored run what the monitor did."""

    seconds: float = 0.0
    step_seconds: float = 0.0
    attach_seconds: float = 0.0
    measurements: int = 0
    own_overhead: float = 0.0
    verdict: str = "-"
    plan: str = "-"

    @classmethod
    def of(cls, monitor: rs.RegimeMonitor | None) -> Outcome:
        """What ``monitor`` did (nothing for a plain run): its attach time, measurements, final verdict and plan."""
        if monitor is None:
            return cls()
        verdict = "-" if monitor.regime is None else f"{monitor.regime.label} ({monitor.regime.score:.2f})"
        return cls(attach_seconds=monitor.attach_seconds, measurements=len(monitor.history),
                   own_overhead=monitor.overhead, verdict=verdict, plan=monitor.plan.describe())


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
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], steps: int, turns: Turns, party: int,
    monitor_factory: Callable[[nn.Module, torch.optim.Optimizer], rs.RegimeMonitor] | None = None,
) -> Outcome:
    """Train ``steps`` steps in ``party``'s turns; with ``monitor_factory``, attach its monitor in the first turn and
    close it in the last (both timed as part of the run)."""
    turns.begin(party)
    monitor = None if monitor_factory is None else monitor_factory(model, optimizer).attach()
    for step in range(steps):
        if step:
            turns.step(party)
        x, y = batches(step)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if monitor is not None:
        monitor.close()  # timed: it takes a measurement the budget deferred, as the Trainer callback does
    turns.end(party)
    return Outcome.of(monitor)


def _image_run(name: str, monitored: bool, steps: int, logdir: Path, turns: Turns, party: int) -> Outcome:
    torch.manual_seed(0)
    model = models.cnn() if name == "cnn" else ResNet18()
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
    return _plain_loop(model, optimizer, batches, F.cross_entropy, steps, turns, party, factory)


def _lm_run(monitored: bool, steps: int, logdir: Path, turns: Turns, party: int) -> Outcome:
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
    return _plain_loop(model, optimizer, batches, loss_fn, steps, turns, party, factory)


def _gpt2_run(monitored: bool, steps: int, logdir: Path, turns: Turns, party: int) -> Outcome:
    from regimescope.integrations.transformers import RegimeTrainerCallback
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

    torch.manual_seed(0)
    vocab, length = 64, 32
    config = GPT2Config(vocab_size=vocab, n_positions=length, n_embd=64, n_layer=2, n_head=4)
    model = GPT2LMHeadModel(config)
    tokens = _sequences(16 * steps, length, vocab, seed=1)
    dataset = [{"input_ids": row, "labels": row} for row in tokens]

    class TakeTurns(TrainerCallback):
        """First of the callbacks: the run's first turn starts before the monitor attaches, a new turn at every
        step after the first (so a turn holds a step and the monitor's work after it)."""

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, D102
            turns.begin(party)

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, D102
            if state.global_step:
                turns.step(party)

    class LastTurn(TrainerCallback):
        """Last of the callbacks: the run's last turn ends after the monitor has closed."""

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001, D102
            turns.end(party)

    callback = RegimeTrainerCallback(logdir=logdir) if monitored else None
    arguments = TrainingArguments(
        output_dir=str(logdir / "out"), per_device_train_batch_size=16, max_steps=steps, learning_rate=1e-3,
        report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True, use_cpu=True, seed=0,
    )
    trainer = Trainer(model=model, args=arguments, train_dataset=dataset,
                      callbacks=[TakeTurns(), *([callback] if callback else []), LastTurn()])
    trainer.train()
    return Outcome.of(None if callback is None else callback.monitor)


def _paired(plain: list[float], monitored: list[float]) -> str:
    """``monitored / plain - 1`` of each pair of runs made one after the other, their median and, for several pairs,
    their range: the machine's drift over a session (plain runs here differed by up to a third among themselves)
    moves both runs of a pair alike, so the ratio within a pair is steadier than the ratio of two medians."""
    ratios = sorted(m / p - 1 for p, m in zip(plain, monitored))
    middle = f"{statistics.median(ratios):+.1%}"
    return middle if len(ratios) == 1 else f"{middle} [{ratios[0]:+.1%}, {ratios[-1]:+.1%}]"


def pair(name: str, steps: int) -> tuple[Outcome, Outcome]:
    """A plain and a monitored run of ``name`` in lockstep (the monitor's log in a fresh folder); the monitor's
    clock (:func:`regimescope.budget.now`) counts only the monitored run's turns, as if it ran alone."""
    runners = {"lm": _lm_run, "gpt2": _gpt2_run}
    runner = runners.get(name, functools.partial(_image_run, name))
    turns = Turns()
    clock = budget.now
    budget.now = turns.clock(1)
    gc.collect()
    gc.freeze()  # see the module docstring: a full collection of what is here would land on either run by chance
    try:
        with tempfile.TemporaryDirectory() as folder:
            plain, monitored = in_lockstep(
                turns,
                lambda t, party: runner(False, steps, Path(folder), t, party),
                lambda t, party: runner(True, steps, Path(folder), t, party),
            )
    finally:
        budget.now = clock
        gc.unfreeze()
    for party, outcome in enumerate((plain, monitored)):
        outcome.seconds = turns.seconds[party]
        outcome.step_seconds = statistics.median(turns.turns[party])
    return plain, monitored


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=["cnn", "resnet18", "gpt2", "lm"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs per model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, and CPUs the process is kept on")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    process = one_core_one_arena(args.threads)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {process}, {args.steps} steps, "
          f"{args.repeats} pair(s) in lockstep")
    print("| model | plain (s) | monitored (s) | overhead | monitor's own clock | median step | measurements | verdict "
          "| attach / step | measurement |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.model or ["cnn", "resnet18", "gpt2", "lm"]:
        plain, monitored = zip(*(pair(name, args.steps) for _ in range(args.repeats)))
        p = statistics.median(o.seconds for o in plain)
        m = statistics.median(o.seconds for o in monitored)
        last = monitored[-1]
        step = statistics.median(o.step_seconds for o in plain)
        overhead = _paired([o.seconds for o in plain], [o.seconds for o in monitored])
        slower_step = _paired([o.step_seconds for o in plain], [o.step_seconds for o in monitored])
        print(
            f"| {name} | {p:.1f} | {m:.1f} | {overhead} | {last.own_overhead:.1%} | {slower_step} "
            f"| {last.measurements} | {last.verdict} | {last.attach_seconds / step:.1f} | {last.plan} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
