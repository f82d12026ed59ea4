"""Which parameters train now that did not at ``attach()``: they have no step-0 reference."""

from __future__ import annotations

from typing import Any

import torch

from regimescope.capture.snapshot import Snapshot
from regimescope.indicators.base import Context, Indicator, Output, Reference
from regimescope.ntk.model.blocks import parameter_blocks
from regimescope.record import Record
from regimescope.tags import OUTSIDE_MODEL, PARAMETERS_ADDED, layer_tag


def trained_parameters(context: Context) -> dict[str, torch.Tensor]:
    """``name -> tensor`` of every parameter trained now: the optimizer's parameters with ``requires_grad`` (the
    model's, without an optimizer); a tensor the optimizer holds outside the model is named ``outside-model-<i>``,
    ``i`` its position among the optimizer's parameters."""
    if context.optimizer is None:
        candidates = list(context.trained.parameters())
    else:
        candidates = [p for group in context.optimizer.param_groups for p in group["params"]]
    names = {id(p): name for name, p in context.trained.named_parameters()}
    trained = {}
    for index, p in enumerate(candidates):
        if p.requires_grad:
            trained[names.get(id(p), f"{OUTSIDE_MODEL}-{index}")] = p
    return trained


class TrainedParameters(Indicator):
    """Reports the parameters that start training after ``attach()``.

    The step-0 kernel ``K_0 = sum_l K_l,0`` and the step-0 weights cover the parameters trained at ``attach()``. A
    parameter that starts training later (``optimizer.add_param_group`` after unfreezing a layer, or
    ``requires_grad_(True)`` on a parameter the optimizer holds) has no step-0 reference: in a layer measured at step
    0 it joins that layer's block, whose distance from step 0 then moves for a reason that is not training; elsewhere
    it is in no kernel block, weight panel or verdict. Each such parameter is written once under
    ``regimescope/parameters/added/<name>`` (1: it joined a measured layer; 0: it did not), which the
    :class:`~regimescope.alerts.ParametersAdded` rule announces. It reads no tensor: one pass over the optimizer's
    parameter list.
    """

    name = "trained_parameters"
    needs = frozenset()
    reference = Reference.NONE
    outputs = (Output(PARAMETERS_ADDED, per_layer=True),)

    def __init__(self) -> None:
        self._known: set[str] | None = None

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        trained = trained_parameters(context)
        if self._known is None:  # the step-0 measurement: what its references cover
            self._known = set(trained)
            return Record(current.step)
        added = [name for name in trained if name not in self._known]  # in the optimizer's order
        self._known |= set(added)
        measured = {
            name: block.name for block in parameter_blocks(context.trained) if block.name in current.layer_kernels
            for name in block.param_names
        }
        return Record(current.step, scalars={layer_tag(PARAMETERS_ADDED, n): float(n in measured) for n in added})

    def state_dict(self) -> dict[str, Any]:
        return {"known": None if self._known is None else sorted(self._known)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._known = None if state.get("known") is None else set(state["known"])
