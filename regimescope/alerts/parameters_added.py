"""Parameters that start training after ``attach()``: the step-0 references have nothing for them, so it is said."""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import nn

from regimescope.alerts.alert import Alert
from regimescope.ntk.model.blocks import ParamBlock, parameter_blocks

KIND = "parameters_added"
"""The kind of the alert :class:`AddedParameters` raises."""
SHOWN = 5
"""Parameter names shown in the alert's message; the rest are counted."""
MEANING = (
    "the kernel, the weight panels and the verdict compare each measurement with the step-0 references taken at "
    "attach(), which cover only the parameters trained then."
)


class AddedParameters:
    """Compares the parameters trained now with those the monitor's step-0 references cover.

    The step-0 kernel ``K_0 = sum_l K_l,0`` and the step-0 weights are taken at ``attach()`` over the parameters
    trained then. A parameter that starts training later (``optimizer.add_param_group`` after unfreezing a layer, or
    ``requires_grad_(True)`` on a parameter the optimizer already holds) has no step-0 block or weights:

    - in a layer with no parameter trained at ``attach()``, it is in no kernel block nor weight panel;
    - in a layer measured at step 0, it joins that layer's block, so ``K_l,t`` and ``K_l,0`` sum over different
      parameters and the layer's distance from step 0 moves for a reason that is not training.

    :meth:`check` finds such parameters and returns one alert per batch of them: each parameter is announced once.
    It costs one pass over the optimizer's parameter list (no tensor is read).

    Args:
        model: The module the optimizer trains.
        optimizer: The optimizer, or ``None`` (then the trained parameters are the model's with ``requires_grad``).
        kernel_layers: The kernel blocks measured since step 0 (layer names, see :func:`regimescope.ntk.layer_names`).
    """

    def __init__(
        self, model: nn.Module, optimizer: torch.optim.Optimizer | None, kernel_layers: Collection[str]
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.kernel_layers = frozenset(kernel_layers)
        measured = {name for block in self._blocks() for name in block.param_names}
        names = self._names()
        self._known = {key for key in self._trained() if key not in names or names[key] in measured}

    def _trained(self) -> dict[int, torch.Tensor]:
        """``id -> parameter`` of every parameter trained now."""
        if self.optimizer is None:
            candidates = list(self.model.parameters())
        else:
            candidates = [p for group in self.optimizer.param_groups for p in group["params"]]
        return {id(p): p for p in candidates if p.requires_grad}

    def _names(self) -> dict[int, str]:
        """``id -> qualified name`` of the model's parameters."""
        return {id(p): name for name, p in self.model.named_parameters()}

    def _blocks(self) -> list[ParamBlock]:
        """The model's blocks now, of the layers measured since step 0."""
        return [block for block in parameter_blocks(self.model) if block.name in self.kernel_layers]

    def check(self, step: int) -> list[Alert]:
        """The alert announcing the parameters trained now that the step-0 references do not cover (``[]`` when
        there are none, or they were announced already)."""
        added = {key: p for key, p in self._trained().items() if key not in self._known}
        if not added:
            return []
        self._known |= set(added)
        names = self._names()
        shown = [
            f"`{names[key]}`" if key in names else f"a {tuple(p.shape)} tensor outside the model"
            for key, p in added.items()
        ]
        more = f" and {len(shown) - SHOWN} more" if len(shown) > SHOWN else ""
        added_names = {names[key] for key in added if key in names}
        joined = [block.name for block in self._blocks() if added_names & set(block.param_names)]
        layers = ", ".join(f"`{layer}`" for layer in joined)
        effect = (
            f"layer(s) {layers} were measured at step 0 without them and include them now, so their kernel blocks no "
            "longer compare the same parameters with step 0"
            if joined
            else "they are in no kernel block, weight panel or verdict"
        )
        return [
            Alert(
                step=step,
                kind=KIND,
                message=(
                    f"{len(added)} parameter(s) started training after attach() (seen at step {step}): "
                    f"{', '.join(shown[:SHOWN])}{more}; "
                    f"{effect}. To monitor them, attach a new RegimeMonitor (its own logdir) once they train, or make "
                    "them trainable before attach() (e.g. in a param group with lr=0 until you unfreeze them)."
                ),
                layer=", ".join(joined) or None,
                value=float(len(added)),
                meaning=MEANING,
            )
        ]
