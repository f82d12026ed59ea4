"""The real-architecture scenarios: runs on a BatchNorm ResNet and a Hugging Face GPT-2 whose regime theory knows."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from regimescope.knobs import scale_init, scale_output
from regimescope.scenarios.architectures.networks import Logits, gpt2, resnet
from regimescope.scenarios.architectures.size import Size
from regimescope.scenarios.architectures.tasks import Task, digits, markov_chain, markov_text, related_chain
from regimescope.scenarios.architectures.training import Run, train
from regimescope.scenarios.theory import Theory


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


@dataclass(frozen=True)
class Scenario:
    """A run on a real architecture whose regime theory knows.

    Attributes:
        name: ``"<architecture>/<scenario>"``.
        theory: Theory's answer (:attr:`Theory.LAZY` or :attr:`Theory.RICH`).
        why: One line: what the run is.
        build: Builds the run at a size (pre-training included).
    """

    name: str
    theory: Theory
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

    def scenario(label: str, theory: Theory, why: str, build: Callable[..., Run], *args: float) -> Scenario:
        return Scenario(f"{name}/{label}", theory, why, functools.partial(build, arch, *args))

    return [
        scenario("standard", Theory.RICH, "every parameter trained from the default initialisation", _standard),
        scenario("alpha=1", Theory.RICH, "the centred model f - f_0", _output_scaled, 1.0),
        scenario("alpha=100", Theory.LAZY, "100 (f - f_0), loss / 100^2", _output_scaled, 100.0),
        scenario("alpha=10^4", Theory.LAZY, "10^4 (f - f_0), loss / 10^8", _output_scaled, 1e4),
        scenario("small lr, wide", Theory.LAZY, "4x wider, learning rate / 100", _small_lr_wide),
        scenario("small init", Theory.RICH, "every parameter x 0.1 at initialisation", _small_init),
        scenario("head only", Theory.LAZY, f"only `{arch.head}` trained, on frozen features", _head_only),
        scenario("fine-tune", Theory.LAZY, f"pre-trained, then fine-tuned on {arch.related_text}", _fine_tuned),
    ]


SCENARIOS = {scenario.name: scenario for arch in ARCHITECTURES.values() for scenario in scenarios(arch)}
"""Every scenario by name, ResNet first."""
