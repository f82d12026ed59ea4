"""Which parameters train now that did not at ``attach()``: they have no step-0 reference."""

from __future__ import annotations

from typing import Any

import torch

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.indicators.base import Context, Indicator, Output, Reference
from regimescope.ntk.model.blocks import parameter_blocks
from regimescope.record import Record
from regimescope.tags import OUTSIDE_MODEL, PARAMETERS_ADDED, PARAMETERS_JOINED, layer_tag


def trained_parameters(context: Context) -> dict[str, torch.Tensor]:
    """``name -> tensor`` of every parameter trained now: the model's parameters with ``requires_grad`` and, with an
    optimizer, the tensors it holds with ``requires_grad``. A tensor the optimizer holds outside the model is named
    ``outside-model-<i>``, ``i`` its position among the optimizer's parameters (positional: a resumed run that builds
    its param groups in another order names them differently)."""
    trained = {name: p for name, p in context.trained.named_parameters() if p.requires_grad}
    if context.optimizer is not None:
        known = {id(p) for p in trained.values()}
        held = [p for group in context.optimizer.param_groups for p in group["params"]]
        trained.update(
            (f"{OUTSIDE_MODEL}-{i}", p) for i, p in enumerate(held) if p.requires_grad and id(p) not in known
        )
    return trained


class TrainedParameters(Indicator):
    """Reports the parameters that start training after ``attach()``.

    The step-0 kernel ``K_0 = sum_l K_l,0`` and the step-0 weights cover the parameters trained at ``attach()`` (the
    model's with ``requires_grad`` then). A parameter that starts training later (a layer unfrozen into
    ``optimizer.add_param_group``, ``requires_grad_(True)`` on a parameter the optimizer holds) has no step-0
    reference: in a layer measured at step 0 it joins that layer's block, whose distance from step 0 then moves for a
    reason that is not training; elsewhere it is in no kernel block, weight panel or verdict. Each such parameter is
    written once, under ``regimescope/parameters/added/<name>``, and each measured block it joined under
    ``regimescope/parameters/joined/<block>``; the :class:`~regimescope.alerts.ParametersAdded` rule announces them.
    It reads no tensor: a pass over the trained parameters' names at each measurement, and the model's blocks only
    when something was added.
    """

    name = "trained_parameters"
    needs = frozenset({Need.KERNEL})
    reference = Reference.NONE
    outputs = (Output(PARAMETERS_ADDED, per_layer=True), Output(PARAMETERS_JOINED, per_layer=True))

    def __init__(self) -> None:
        self._known: set[str] = set()

    def setup(self, context: Context) -> None:
        """What the step-0 references will cover: the parameters trained at ``attach()``."""
        self._known = set(trained_parameters(context))

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        added = [name for name in trained_parameters(context) if name not in self._known]  # the optimizer's order
        if not added:
            return Record(current.step)
        self._known.update(added)
        scalars = {layer_tag(PARAMETERS_ADDED, name): 1.0 for name in added}
        for block in parameter_blocks(context.trained):
            joined = sum(name in block.param_names for name in added)
            if joined and block.name in current.layer_kernels:
                scalars[layer_tag(PARAMETERS_JOINED, block.name)] = float(joined)
        return Record(current.step, scalars=scalars)

    def state_dict(self) -> dict[str, Any]:
        return {"known": sorted(self._known)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The saved set: the resumed run's step-0 references are the saved ones (a state saved before this
        indicator existed keeps what :meth:`setup` found)."""
        if "known" in state:
            self._known = set(state["known"])
