"""How much drift of the layer-balance quantities the optimizer's finite steps explain."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from regimescope.conservation.learning_rates import PairRates
from regimescope.conservation.pairs import LayerPair
from regimescope.conservation.quantities import PairSquares, unit_scales, unit_squares, weighted_squares
from regimescope.tags import BALANCE_DRIFT, BALANCE_EXPLAINED, layer_tag

logger = logging.getLogger(__name__)


def _step_factor(group: Mapping[str, Any]) -> float:
    """How much a param group's momentum ``beta`` enlarges the squared step: ``(1 + beta) / (1 - beta)^3``.

    ``1 / (1 - beta)^2`` for the effective step ``eta / (1 - beta)``, and ``(1 + beta) / (1 - beta)`` for the
    velocity lagging behind the current gradient (the first-order terms no longer cancel exactly).
    """
    value = group.get("momentum", 0.0)
    beta = float(value) if isinstance(value, (int, float)) and 0 <= value < 1 else 0.0
    return (1.0 + beta) / (1.0 - beta) ** 3


class ExplainedDrift:
    """Accumulates, step by step, the largest drift of each pair's ``delta_k`` that gradient steps explain.

    Under gradient descent with step ``eta_p`` on parameter ``p``, the first-order change of ``delta_k`` cancels
    exactly (positive homogeneity), and one step changes it by ``sum_p +-eta_p^2 |g_{p,k}|^2 / r_p`` (theory.md
    section 2; ``r_p`` the rates the balance indicator weights ``delta_k`` with, 1 in the plain form). So after any
    number of plain steps ``|delta_{t,k} - delta_{0,k}| <= E_k = sum_steps sum_p eta_p^2 |g_{p,k}|^2 / r_p``. After
    each optimizer step this class adds the step's term, read from the gradients the step used (``p.grad``) and
    the param groups' ``lr`` (when the monitor samples every ``s``-th step to stay within its overhead budget, the
    sampled step's term ``s`` times, for itself and the ``s - 1`` steps after it: an estimate of the sum, which
    over-counts, and so stays a bound, while the gradients shrink); with momentum ``beta`` the squared step is
    enlarged by ``(1 + beta) / (1 - beta)^3`` (an estimate: momentum keeps the drift second order, with a larger
    effective step). The bound is logged as ``regimescope/balance_explained/<pair> = |E|_2 / |s_0|_2``, normalised like
    ``regimescope/balance_drift/<pair>``: a drift beyond it is not explained by finite steps (Adam and other
    adaptive optimizers, decoupled or coupled weight decay, a loss the pair's units are not homogeneous in).

    A failure while accumulating (an unexpected parameter layout) is logged once and switches the accumulation
    off; training and measuring go on, and the conservation rule then has no bound to judge against.

    :meth:`noise` gives the rounding floor of the measured drift: float training rounds every update, a random
    walk of ``~ eps sqrt(steps) s_t`` in ``delta_k``.

    Args:
        pairs: ``(pair, rates)`` of each layer pair the balance indicator reports (rates ``None``: plain form).
    """

    def __init__(self, pairs: Sequence[tuple[LayerPair, PairRates | None]]) -> None:
        self.pairs = list(pairs)
        self._budgets: dict[str, torch.Tensor] = {}
        self._base: dict[str, float] = {}
        self._steps = 0
        self._names: dict[int, str] = {}

    def start(self, model: nn.Module) -> None:
        """Take the initial scales ``|s_0|`` from the model as it is now (at initialisation) and zero the budgets."""
        weights = dict(model.named_parameters())
        self._names = {id(p): name for name, p in model.named_parameters()}
        self._steps = 0
        try:
            for pair, rates in self.pairs:
                squares = unit_squares(pair, weights)
                self._base[pair.name] = float(unit_scales(squares, rates).norm())
                self._budgets[pair.name] = torch.zeros(pair.units, dtype=torch.float64)
        except Exception:
            self._switch_off()

    def observe(self, optimizer: torch.optim.Optimizer, steps: int = 1) -> None:
        """Add the step the optimizer just took (call it after ``optimizer.step()``, before ``zero_grad``).

        Args:
            optimizer: The optimizer that just stepped.
            steps: How many steps this one stands for: its term is added ``steps`` times (the monitor samples
                steps when observing each would cost too much; the sum is then estimated, a bound only while the
                gradients shrink).
        """
        if not self._budgets:
            return
        try:
            self._add_step(optimizer, steps)
        except Exception:
            self._switch_off()

    def _switch_off(self) -> None:
        logger.exception("regimescope: the explained-drift bound failed and is switched off; training goes on.")
        self.pairs, self._budgets, self._base = [], {}, {}

    def _add_step(self, optimizer: torch.optim.Optimizer, steps_observed: int) -> None:
        steps: dict[str, torch.Tensor] = {}
        for group in optimizer.param_groups:
            lr = group.get("lr")
            if not isinstance(lr, (int, float)) and not (isinstance(lr, torch.Tensor) and lr.numel() == 1):
                continue
            effective = float(lr) * math.sqrt(_step_factor(group))
            for param in group["params"]:
                name = self._names.get(id(param))
                if name is not None and param.grad is not None:
                    steps[name] = param.grad.detach() * effective
        self._steps += steps_observed
        for pair, rates in self.pairs:
            if not all(name in steps for name in pair.parameter_names):
                continue
            squares = unit_squares(pair, steps, dtype=None)  # a bound: a rounding per square is immaterial
            outgoing, incoming = weighted_squares(squares, rates)
            bound = outgoing + incoming
            self._budgets[pair.name] += steps_observed * bound.cpu()

    def scalars(self) -> dict[str, float]:
        """``regimescope/balance_explained/<pair> -> |E|_2 / |s_0|_2`` for each pair (none for a pair whose initial
        scale is zero: the ratio is undefined there)."""
        return {
            layer_tag(BALANCE_EXPLAINED, name): float(budget.norm()) / self._base[name]
            for name, budget in self._budgets.items()
            if self._base[name] > 0
        }

    def noise(self, squares: PairSquares) -> dict[str, float]:
        """Rounding floor of each pair's measured drift: ``eps sqrt(steps) |s_t|_2 / |s_0|_2``.

        Args:
            squares: The unit squares of the current weights (a snapshot's), whose dtype sets ``eps``.

        Returns:
            ``regimescope/balance_drift/<pair> -> floor`` for the pairs whose weights are present.
        """
        floors = {}
        for pair, rates in self.pairs:
            if self._base.get(pair.name, 0) <= 0 or not squares.holds(pair):
                continue
            eps = torch.finfo(squares.weights[pair.in_weight].dtype).eps
            scale = float(unit_scales(squares(pair), rates).norm())
            floor = eps * math.sqrt(max(self._steps, 1)) * scale / self._base[pair.name]
            floors[layer_tag(BALANCE_DRIFT, pair.name)] = floor
        return floors

    def state_dict(self) -> dict[str, Any]:
        """Budgets, initial scales and step count, for checkpoints (a resumed run keeps its budget)."""
        return {"budgets": dict(self._budgets), "base": dict(self._base), "steps": self._steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (call after :meth:`start`, which sets up the parameter names)."""
        self._budgets = {name: torch.as_tensor(b, dtype=torch.float64) for name, b in state["budgets"].items()}
        self._base = dict(state["base"])
        self._steps = int(state["steps"])
