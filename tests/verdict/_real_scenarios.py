"""Known answers on real architectures: a ResNet with BatchNorm and a Hugging Face GPT-2, in runs whose regime is
known by construction (docs/verdict.md, "Known answers on real architectures").

Shared by ``tests/verdict/test_real_architectures.py`` (at :data:`QUICK` size) and ``benchmarks/architectures.py``
(at :data:`FULL` size). Every run is seeded and trained by SGD with momentum 0.9 with a
:class:`~regimescope.RegimeMonitor` attached at its start, with ``max_overhead=None`` (every scheduled measurement
happens, exact kernels of every output) and the default ``mode="probe_stats"`` (BatchNorm normalises the probe with
its own statistics, held fixed: ``regimescope.capture.probe_statistics``).

The networks:

* ``resnet``: ResNet-18's layout (4 stages of 2 basic blocks, BatchNorm after every convolution) with ``width``
  channels in the first stage, on scikit-learn's handwritten digits (8x8, bundled with scikit-learn: no download),
  resized to ``image x image`` and repeated over 3 channels, 10 classes; learning rate 0.005;
* ``gpt2``: ``transformers.GPT2LMHeadModel`` from a tiny config (2 layers, untied head, no dropout, eager
  attention), trained on next-token prediction of sequences drawn from a random Markov chain over 16 tokens;
  learning rate 0.1.

Both learning rates are below ``2 (1 + momentum) / lambda_max``, ``lambda_max`` the largest eigenvalue of the loss's
Gauss-Newton matrix at initialisation on a training batch (about 250 for the ResNet, 11 for GPT-2, at the quick
size), so that the linearised model trains stably: above it the linearisation diverges (catapult dynamics) and no
output scale makes training lazy.

The scenarios (theory's answer in brackets):

* ``standard``: every parameter trained from the default initialisation [rich];
* ``alpha=1``, ``alpha=100``, ``alpha=10^4``: the centred output-scaled model ``alpha (f - f_0)`` trained on the
  loss divided by ``alpha^2`` (Chizat, Oyallon & Bach 2019): the function's dynamics are the same to leading order,
  the parameters move ``~ 1 / alpha``, so training is lazy for ``alpha`` large enough [rich, lazy, lazy];
* ``small lr, wide``: 4x the width, the learning rate divided by 100, the same number of steps [lazy];
* ``small init``: every parameter multiplied by 0.1 at initialisation: the output starts near zero and the weights
  must grow to fit [rich];
* ``head only``: every parameter frozen (``requires_grad=False``) except the linear head: the model is linear in
  what is trained, its kernel is the Gram matrix of the frozen features and cannot change [lazy];
* ``fine-tune``: trained on one task for ``pretrain_steps``, then every parameter fine-tuned on a related one with
  the monitor attached at the start of fine-tuning [lazy: near-lazy fine-tuning, Malladi et al. 2023].

Theory's answers are limits (large ``alpha``, large width, large pre-trained models); :func:`linearisation_gap`
measures what "lazy" means directly, whether the trained network stays close to its linearisation at the start of
the run, independently of the monitor and its thresholds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

import regimescope as rs
from regimescope.knobs import scale_init, scale_output
from regimescope.outputs import default_output
from regimescope.record import Record
from regimescope.schedule import LogThenEvery
from regimescope.sinks import MemorySink
from regimescope.tags import KERNEL_DISTANCE, KERNEL_RELATIVE_CHANGE, LABELS, REGIME_LABEL, REGIME_SCORE
from tests._dashboard_runs import ResNetLike

LINEAR, NONLINEAR = 0.15, 0.3
"""Linearisation gaps below ``LINEAR``: the network trained as its linearisation (lazy); above ``NONLINEAR``: it did
not (its features moved); between: no claim."""
VOCAB, LENGTH = 16, 8
"""The language models' vocabulary and sequence length."""
MOMENTUM = 0.9
"""SGD momentum of every run."""


@dataclass(frozen=True)
class Size:
    """How big the runs are.

    Attributes:
        image: Side of the ResNet's input images (digits are 8x8; larger sides are resized bilinearly).
        width: Channels of the ResNet's first stage (``width, 2 width, 4 width, 8 width``).
        embedding: GPT-2's width.
        probe: Examples in the monitor's probe.
        steps: Training steps (fine-tuning steps for ``fine-tune``).
        pretrain_steps: Steps of the pre-training of ``fine-tune``.
        every: Measurement interval (the monitor also measures at step 0 and, with ``early``, at the powers of two
            below ``every``).
        early: Measure at the powers of two below ``every``.
    """

    image: int
    width: int
    embedding: int
    probe: int
    steps: int
    pretrain_steps: int
    every: int
    early: bool


QUICK = Size(image=8, width=4, embedding=32, probe=16, steps=60, pretrain_steps=200, every=30, early=False)
"""The tests' size: a few seconds per run on one core."""
FULL = Size(image=16, width=8, embedding=64, probe=16, steps=400, pretrain_steps=400, every=100, early=True)
"""The benchmark's size."""


# ------------------------------------------------------------------------------------------------------------ tasks
@dataclass
class Task:
    """A training set, how a batch is drawn from it, the loss and the monitor's probe.

    Attributes:
        inputs: Every training input.
        targets: Their targets (class labels, or the token ids themselves for next-token prediction).
        loss: ``loss(outputs, targets)``.
        probe: The monitor's probe (examples outside the training set).
        batch: Examples per training step.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    probe: rs.Probe
    batch: int = 64

    def sample(self, step: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step`` (the same in every run with the same ``seed``)."""
        generator = torch.Generator().manual_seed(1_000_003 * seed + step)
        index = torch.randint(0, len(self.inputs), (self.batch,), generator=generator)
        return self.inputs[index], self.targets[index]


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the logits at position ``t`` against the token at ``t + 1``."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)
    return (images - images.mean()) / images.std(), torch.tensor(digits.target)


def digits(size: Size, half: int = 0) -> Task:
    """Digit classification on one half of scikit-learn's 1797 digits (``half`` 0 or 1).

    The probe is the first ``size.probe`` images of the half, the training set the rest.
    """
    images, labels = _digits()
    part = slice(0, len(images) // 2) if half == 0 else slice(len(images) // 2, None)
    images, labels = images[part, None], labels[part]
    if size.image != images.shape[-1]:
        images = F.interpolate(images, size=size.image, mode="bilinear")
    images = images.expand(-1, 3, -1, -1).contiguous()
    probe = rs.Probe(images[: size.probe], labels[: size.probe])
    return Task(images[size.probe :], labels[size.probe :], F.cross_entropy, probe)


def markov_chain(seed: int) -> torch.Tensor:
    """A ``VOCAB x VOCAB`` transition matrix: each token is followed by one of two random successors, with
    probabilities 0.75 and 0.25."""
    generator = torch.Generator().manual_seed(seed)
    transitions = torch.zeros(VOCAB, VOCAB)
    for token in range(VOCAB):
        first, second = torch.randperm(VOCAB, generator=generator)[:2]
        transitions[token, first], transitions[token, second] = 0.75, 0.25
    return transitions


def related_chain(chain: torch.Tensor) -> torch.Tensor:
    """``chain`` with the probabilities of the two successors exchanged for every other token (a related task)."""
    related = chain.clone()
    related[::2] = torch.where(chain[::2] > 0, 1.0 - chain[::2], 0.0)
    return related


def markov_text(size: Size, transitions: torch.Tensor) -> Task:
    """Next-token prediction on 2048 sequences of ``LENGTH`` tokens drawn from ``transitions`` (uniform first
    token); the probe is ``size.probe`` more, with their next tokens as targets (``Probe.next_token``)."""
    n = 2048 + size.probe
    generator = torch.Generator().manual_seed(1)
    tokens = torch.empty(n, LENGTH, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, VOCAB, (n,), generator=generator)
    for t in range(1, LENGTH):
        tokens[:, t] = torch.multinomial(transitions[tokens[:, t - 1]], 1, generator=generator)[:, 0]
    train, probe = tokens[size.probe :], tokens[: size.probe]
    return Task(train, train, next_token_loss, rs.Probe.next_token(probe))


# ----------------------------------------------------------------------------------------------------------- models
def resnet(size: Size, widen: int = 1) -> nn.Module:
    """The ResNet-18-layout network with ``widen * size.width`` channels in its first stage, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ResNetLike(width=widen * size.width, classes=10)


def gpt2(size: Size, widen: int = 1) -> nn.Module:
    """A seeded two-layer GPT-2 of width ``widen * size.embedding`` with an untied head (so that the head can be
    trained alone) and eager attention (forward-mode derivatives, for :func:`linearisation_gap`)."""
    import transformers

    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=LENGTH,
        n_embd=widen * size.embedding,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return transformers.GPT2LMHeadModel(config)


class Logits(nn.Module):
    """A model returning its logits as a tensor (the output-scale knob wraps a model that returns a tensor)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``default_output(model(x))``: the tensor itself, or a Hugging Face output's ``logits``."""
        return default_output(self.model(x))


@dataclass(frozen=True)
class Architecture:
    """A network, its tasks, its head and its learning rate.

    Attributes:
        name: ``"resnet"`` or ``"gpt2"``.
        build: ``build(size, widen)``: the seeded network.
        task: The training task.
        related: The related task ``fine-tune`` fine-tunes on after training on :attr:`task`.
        related_text: What the related task is, for tables.
        head: Name of the linear head module.
        lr: SGD learning rate.
    """

    name: str
    build: Callable[[Size, int], nn.Module]
    task: Callable[[Size], Task]
    related: Callable[[Size], Task]
    related_text: str
    head: str
    lr: float


def _chain_text(size: Size) -> Task:
    return markov_text(size, markov_chain(0))


def _related_text(size: Size) -> Task:
    return markov_text(size, related_chain(markov_chain(0)))


ARCHITECTURES = {
    "resnet": Architecture(
        "resnet", resnet, digits, functools.partial(digits, half=1), "the other half of the digits", "fc", 0.005
    ),
    "gpt2": Architecture(
        "gpt2", gpt2, _chain_text, _related_text, "half the successor probabilities exchanged", "lm_head", 0.1
    ),
}


# -------------------------------------------------------------------------------------------------------- scenarios
@dataclass
class Run:
    """A built run, ready to train.

    Attributes:
        model: The model the monitor watches and the optimizer trains.
        task: What it is trained on.
        lr: SGD learning rate.
        loss_scale: The loss is multiplied by this (``1 / alpha^2`` for the output-scaled model).
    """

    model: nn.Module
    task: Task
    lr: float
    loss_scale: float = 1.0


@dataclass(frozen=True)
class Scenario:
    """A run on a real architecture whose regime theory knows.

    Attributes:
        name: ``"<architecture>/<scenario>"``.
        theory: ``"lazy"`` or ``"rich"``.
        why: One line: what the run is.
        build: Builds the run at a size (pre-training included).
    """

    name: str
    theory: str
    why: str
    build: Callable[[Size], Run]


def _standard(arch: Architecture, size: Size) -> Run:
    return Run(arch.build(size, 1), arch.task(size), arch.lr)


def _output_scaled(arch: Architecture, alpha: float, size: Size) -> Run:
    model = scale_output(Logits(arch.build(size, 1)), alpha, centred=True)
    return Run(model, arch.task(size), arch.lr, model.loss_scale)


def _small_lr_wide(arch: Architecture, size: Size) -> Run:
    return Run(arch.build(size, 4), arch.task(size), arch.lr / 100)


def _small_init(arch: Architecture, size: Size) -> Run:
    return Run(scale_init(arch.build(size, 1), 0.1), arch.task(size), arch.lr)


def _head_only(arch: Architecture, size: Size) -> Run:
    model = arch.build(size, 1).requires_grad_(False)
    model.get_submodule(arch.head).requires_grad_(True)
    return Run(model, arch.task(size), arch.lr)


def _fine_tuned(arch: Architecture, size: Size) -> Run:
    pretraining = Run(arch.build(size, 1), arch.task(size), arch.lr)
    train(pretraining, size.pretrain_steps, seed=1)
    return Run(pretraining.model, arch.related(size), arch.lr)


def scenarios(arch: Architecture) -> list[Scenario]:
    """The scenarios on one architecture."""
    name = arch.name

    def scenario(label: str, theory: str, why: str, build: Callable[..., Run], *args: float) -> Scenario:
        return Scenario(f"{name}/{label}", theory, why, functools.partial(build, arch, *args))

    return [
        scenario("standard", "rich", "every parameter trained from the default initialisation", _standard),
        scenario("alpha=1", "rich", "the centred model f - f_0", _output_scaled, 1.0),
        scenario("alpha=100", "lazy", "100 (f - f_0), loss / 100^2", _output_scaled, 100.0),
        scenario("alpha=10^4", "lazy", "10^4 (f - f_0), loss / 10^8", _output_scaled, 1e4),
        scenario("small lr, wide", "lazy", "4x wider, learning rate / 100", _small_lr_wide),
        scenario("small init", "rich", "every parameter x 0.1 at initialisation", _small_init),
        scenario("head only", "lazy", f"only `{arch.head}` trained, on frozen features", _head_only),
        scenario("fine-tune", "lazy", f"pre-trained, then fine-tuned on {arch.related_text}", _fine_tuned),
    ]


SCENARIOS = {scenario.name: scenario for arch in ARCHITECTURES.values() for scenario in scenarios(arch)}
"""Every scenario by name, ResNet first."""


# --------------------------------------------------------------------------------------------------------- training
def _step(run: Run, optimizer: torch.optim.Optimizer, step: int, seed: int) -> float:
    x, y = run.task.sample(step, seed)
    loss = run.task.loss(default_output(run.model(x)), y)
    optimizer.zero_grad()
    (run.loss_scale * loss).backward()
    optimizer.step()
    return float(loss.detach())


def _optimizer(run: Run) -> torch.optim.Optimizer:
    trained = [p for p in run.model.parameters() if p.requires_grad]
    return torch.optim.SGD(trained, lr=run.lr, momentum=MOMENTUM)


def train(run: Run, steps: int, seed: int = 0) -> list[float]:
    """Train ``run`` for ``steps`` SGD steps without a monitor; the training losses (before loss scaling)."""
    optimizer = _optimizer(run)
    run.model.train()
    return [_step(run, optimizer, step, seed) for step in range(steps)]


@dataclass
class Outcome:
    """What the monitor said about a scenario's run.

    Attributes:
        scenario: The scenario.
        steps: Training steps monitored.
        label: Final label.
        score: Final richness score.
        distance: Final ``S(K_0, K_T)``.
        change: Final ``|K_T - K_0| / |K_0|``.
        losses: The training loss at every step (before loss scaling).
        explanation: ``monitor.explain()`` at the end.
        history: Every record.
    """

    scenario: Scenario
    steps: int
    label: str
    score: float
    distance: float
    change: float
    losses: list[float] = field(repr=False)
    explanation: str = field(repr=False)
    history: list[Record] = field(repr=False)

    @property
    def agrees(self) -> bool:
        """Whether the final label is theory's."""
        return self.label == self.scenario.theory

    @property
    def final_loss(self) -> float:
        """The mean training loss of the last 10 steps."""
        return sum(self.losses[-10:]) / len(self.losses[-10:])

    def final(self, tag: str) -> float:
        """The last recorded value of a scalar tag."""
        return next(r.scalars[tag] for r in reversed(self.history) if tag in r.scalars)


def run_scenario(scenario: Scenario, size: Size) -> Outcome:
    """Build ``scenario`` at ``size`` and train it with a monitor attached at the start of the monitored run."""
    run = scenario.build(size)
    optimizer = _optimizer(run)
    memory = MemorySink()
    schedule = LogThenEvery(size.every, early=size.early)
    monitor = rs.RegimeMonitor(
        run.model, run.task.probe, optimizer=optimizer, sinks=[memory], schedule=schedule, max_overhead=None
    )
    with monitor:
        run.model.train()
        losses = [_step(run, optimizer, step, seed=0) for step in range(size.steps)]
        explanation = monitor.explain()
    last = next(r.scalars for r in reversed(memory.records) if REGIME_LABEL in r.scalars)
    return Outcome(
        scenario=scenario,
        steps=size.steps,
        label=LABELS[int(last[REGIME_LABEL])],
        score=last[REGIME_SCORE],
        distance=last[KERNEL_DISTANCE],
        change=last[KERNEL_RELATIVE_CHANGE],
        losses=losses,
        explanation=explanation,
        history=list(memory.records),
    )


# ----------------------------------------------------------------------------------------------------- linearisation
def linearisation_gap(scenario: Scenario, size: Size) -> float:
    """How far the trained network ends from its linearisation: ``|F_T - F_T^lin| / |F_T - F_0|`` on the probe.

    The network ``F`` and its linearisation at the start of the run, ``F^lin(theta) = F(theta_0) + J_0 (theta -
    theta_0)``, are trained side by side from the same parameters on the same batches with the same optimizer;
    both are evaluated on the probe normalised with its own batch statistics, as the monitor sees it.
    Lazy training (the network trains as its linearisation) gives a gap much smaller than 1; feature learning a gap
    of order 1. This is what "lazy" means, measured without the kernel or the monitor's thresholds.
    """
    run = scenario.build(size)
    model = run.model.train()
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def network(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        fresh = {name: b.clone() for name, b in buffers.items()}  # running statistics stay untouched
        return default_output(functional_call(model, {**start, **params, **fresh}, (x,)))

    def linearised(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        tangent = {name: params[name] - start[name] for name in names}
        value, derivative = jvp(lambda p: network(p, x), ({name: start[name] for name in names},), (tangent,))
        return value + derivative

    probe = run.task.probe.inputs
    with torch.no_grad():
        initial = network({}, probe)
    ends = []
    for function in (network, linearised):
        params = {name: start[name].clone().requires_grad_(True) for name in names}
        optimizer = torch.optim.SGD(params.values(), lr=run.lr, momentum=MOMENTUM)
        for step in range(size.steps):
            x, y = run.task.sample(step)
            loss = run.task.loss(function(params, x), y)
            optimizer.zero_grad()
            (run.loss_scale * loss).backward()
            optimizer.step()
        with torch.no_grad():
            ends.append(function(params, probe))
    trained, linear = ends
    return float((trained - linear).norm() / (trained - initial).norm())


def agrees_with_gap(label: str, gap: float) -> bool | None:
    """Whether a verdict says what the linearisation gap says: lazy below :data:`LINEAR`, not lazy (transitional or
    rich) above :data:`NONLINEAR`; ``None`` between, where the gap makes no claim."""
    if gap < LINEAR:
        return label == "lazy"
    if gap > NONLINEAR:
        return label != "lazy"
    return None

