"""The linearisation gap: whether a run trained as its linearisation, measured without the kernel or the
monitor's thresholds."""

from __future__ import annotations

import torch
from torch.func import functional_call, jvp

from regimescope.outputs import default_output
from regimescope.scenarios.architectures.catalogue import Scenario
from regimescope.scenarios.architectures.size import Size
from regimescope.scenarios.architectures.training import MOMENTUM

LINEAR, NONLINEAR = 0.15, 0.3
"""Linearisation gaps below ``LINEAR``: the network trained as its linearisation (lazy); above ``NONLINEAR``: it did
not (its features moved); between: no claim."""


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
