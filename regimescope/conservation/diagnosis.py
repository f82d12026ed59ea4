"""Why a pair's balance drifted: gradient flow, finite steps, weight decay, an adaptive optimizer, or the activation.

theory.md section 2 lists what moves ``delta_k`` away from its initial value, and each leaves its own mark:

- gradient flow conserves it exactly; a plain gradient step (GD, minibatch SGD) changes
  ``delta_k = |a_k|^2 / eta_out - |w_k|^2 / eta_in`` by ``eta_out |g_a|^2 - eta_in |g_w|^2`` (second order; theory.md
  writes the same identity for ``eta_in eta_out delta_k``), a drift ``~ eta`` at fixed time; momentum keeps it
  second order with the effective step ``eta / (1 - beta)``;
- coupled L2 weight decay ``lambda`` shrinks it: ``delta(t) = delta(0) exp(-2 eta lambda steps)``;
- Adam, RMSProp, Adagrad and other adaptive optimizers move it at first order (no vanishing as ``eta -> 0``);
- non-homogeneous activations (tanh, GELU, SiLU, ...) move it at first order too; there ``delta_k`` has no
  conservation meaning.

:func:`diagnose_drift` names the cause for one pair with the numbers behind it; :class:`DriftDiagnoser` keeps the
causes of a run and logs when one changes. The drift is ``|delta_t - delta_0|_2 / |s_0|_2`` (see
:func:`~regimescope.conservation.quantities.balance_drift`).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from regimescope.conservation.balance_pair import BalancePair
from regimescope.conservation.learning_rates import PairRates
from regimescope.conservation.quantities import PairSquares, balance_drift, unit_deltas, unit_scales

logger = logging.getLogger(__name__)

NEGLIGIBLE = 1e-3
"""Drift (fraction of the initial scale) below which the initial balance still holds: consistent with gradient flow."""
TOLERANCE = 2.0
"""Multiple of the explained finite-step drift still counted as finite-step drift (momentum's step is an estimate)."""
PLAIN_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (torch.optim.SGD,)
"""Optimizers taking plain gradient steps ``p -= lr (g + wd p)`` (with momentum)."""


class DriftCause(enum.Enum):
    """What moved a pair's balance."""

    GRADIENT_FLOW = "consistent with gradient flow"
    FINITE_STEPS = "finite-step (SGD-scale) drift"
    WEIGHT_DECAY = "weight decay"
    ADAPTIVE = "adaptive optimizer"
    NON_HOMOGENEOUS = "non-homogeneous activation"
    UNEXPLAINED = "unexplained"


@dataclass(frozen=True)
class OptimizerFacts:
    """What the optimizer does to a pair's parameters.

    Attributes:
        name: Optimizer class name.
        plain: Whether it takes plain gradient steps (``torch.optim.SGD``, with or without momentum).
        lr: Learning rate of the pair's incoming weight.
        momentum: SGD momentum ``beta`` (0 otherwise).
        weight_decay: Weight decay of that param group.
    """

    name: str
    plain: bool
    lr: float
    momentum: float
    weight_decay: float

    @property
    def effective_step(self) -> float:
        """``lr / (1 - momentum)``: the step momentum amounts to."""
        return self.lr / (1 - self.momentum)


def optimizer_facts(optimizer: torch.optim.Optimizer, model: nn.Module, parameter: str) -> OptimizerFacts | None:
    """The optimizer's settings for one parameter (the pair's incoming weight).

    Returns:
        The facts, or ``None`` when the optimizer does not train ``parameter``.
    """
    target = dict(model.named_parameters()).get(parameter)
    for group in optimizer.param_groups:
        if any(p is target for p in group["params"]):
            momentum = group.get("momentum", 0.0)
            return OptimizerFacts(
                name=type(optimizer).__name__,
                plain=isinstance(optimizer, PLAIN_OPTIMIZERS),
                lr=float(group.get("lr", math.nan)),
                momentum=float(momentum) if isinstance(momentum, (int, float)) and 0 <= momentum < 1 else 0.0,
                weight_decay=float(group.get("weight_decay", 0.0) or 0.0),
            )
    return None


@dataclass(frozen=True)
class DriftDiagnosis:
    """The cause of one pair's drift, with the numbers behind it.

    Attributes:
        pair: Pair name.
        cause: The cause.
        drift: ``|delta_t - delta_0| / |s_0|``.
        message: One sentence with the numbers.
    """

    pair: str
    cause: DriftCause
    drift: float
    message: str


def _weight_decay(
    delta_0: torch.Tensor, delta_t: torch.Tensor, scale_0: torch.Tensor, drift: float, steps: int, facts: OptimizerFacts
) -> str:
    factor = math.exp(-2 * facts.lr * facts.weight_decay * steps)
    base = float(scale_0.norm())
    predicted = float(delta_0.norm()) * (1 - factor) / base
    residual = balance_drift(delta_t, delta_0 * factor, scale_0) or 0.0
    verdict = "consistent with it" if residual <= max(0.1 * drift, NEGLIGIBLE) else "more than weight decay explains"
    return (
        f"coupled weight decay {facts.weight_decay:.3g} shrinks delta_k by exp(-2 lr wd steps) = {factor:.3g} "
        f"(lr {facts.lr:.3g}, {steps} steps): predicted drift {predicted:.3g}, measured {drift:.3g}, residual "
        f"{residual:.3g}: {verdict}. Weight decay drives the layers towards balance."
    )


def diagnose_drift(
    pair: str,
    delta_0: torch.Tensor,
    delta_t: torch.Tensor,
    scale_0: torch.Tensor,
    *,
    steps: int,
    facts: OptimizerFacts | None,
    homogeneous: bool = True,
    explained: float | None = None,
) -> DriftDiagnosis:
    """Name what moved a pair's balance from ``delta_0`` to ``delta_t`` over ``steps`` optimizer steps.

    In order: a non-homogeneous activation between the layers; an optimizer that does not take plain gradient
    steps (adaptive); coupled weight decay (compared with ``delta_0 exp(-2 lr wd steps)``); then, for plain steps,
    a drift below :data:`NEGLIGIBLE` is consistent with gradient flow, one within ``TOLERANCE * explained`` (the
    finite-step bound, when known) is finite-step drift, and anything beyond is unexplained.

    Args:
        pair: Pair name.
        delta_0: ``delta_k`` at initialisation.
        delta_t: ``delta_k`` now (same rates).
        scale_0: ``s_k`` at initialisation (same rates).
        steps: Optimizer steps since initialisation.
        facts: The optimizer's settings for the pair (``None``: no optimizer known).
        homogeneous: ``False`` when a non-homogeneous activation lies between the layers.
        explained: The largest drift the finite steps taken explain (``regimescope/balance_explained/<pair>``).

    Returns:
        The diagnosis.

    Raises:
        ValueError: When ``scale_0`` is zero: every unit had zero weights at initialisation, the drift is undefined.
    """
    drift = balance_drift(delta_t, delta_0, scale_0)
    if drift is None:
        raise ValueError(
            f"Pair {pair} had zero weights at initialisation (scale_0 = 0): its drift is undefined; diagnose only "
            "pairs with a non-zero initial scale."
        )
    numbers = f"drift {drift:.3g} of the initial scale after {steps} steps"
    if not homogeneous:
        cause, text = (
            DriftCause.NON_HOMOGENEOUS,
            (
                f"{numbers}; a non-homogeneous activation between the layers moves delta_k at first order, so it "
                "has no conservation meaning here."
            ),
        )
    elif facts is not None and not facts.plain:
        decay = f" with weight decay {facts.weight_decay:.3g}" if facts.weight_decay else ""
        cause, text = (
            DriftCause.ADAPTIVE,
            (
                f"{numbers} at lr {facts.lr:.3g}; {facts.name}{decay} rescales each coordinate's step, which moves "
                "delta_k at first order: the drift does not vanish as lr -> 0."
            ),
        )
    elif facts is not None and facts.weight_decay > 0:
        cause, text = DriftCause.WEIGHT_DECAY, _weight_decay(delta_0, delta_t, scale_0, drift, steps, facts)
    elif drift <= NEGLIGIBLE:
        step = f" (finite steps add O(lr), effective step {facts.effective_step:.3g})" if facts is not None else ""
        cause, text = DriftCause.GRADIENT_FLOW, f"{numbers}: the initial balance holds{step}."
    elif facts is None:
        cause, text = DriftCause.UNEXPLAINED, f"{numbers}, and no optimizer is attached to say why."
    elif explained is None or drift <= TOLERANCE * explained:
        bound = f", within the {explained:.3g} the steps taken explain" if explained is not None else ""
        cause, text = (
            DriftCause.FINITE_STEPS,
            (
                f"{numbers} at effective step {facts.effective_step:.3g}{bound}: plain gradient steps drift delta_k "
                "by O(lr) at fixed training time (halve lr to halve it)."
            ),
        )
    else:
        cause, text = (
            DriftCause.UNEXPLAINED,
            (
                f"{numbers}, beyond the {explained:.3g} the finite steps explain: something else moves the balance (a "
                "loss term the units are not homogeneous in, parameters changed outside the optimizer)."
            ),
        )
    return DriftDiagnosis(pair=pair, cause=cause, drift=drift, message=text)


def diagnosis_markdown(diagnoses: Sequence[DriftDiagnosis], step: int) -> str:
    """One markdown item per pair: ``pair: cause - message``."""
    lines = [f"**balance drift at step {step}**"]
    lines += [f"- `{d.pair}`: {d.cause.value} - {d.message}" for d in diagnoses]
    return "\n".join(lines)


class DriftDiagnoser:
    """Diagnoses the drift of every tracked pair at each measurement and logs when a pair's cause changes.

    Args:
        pairs: ``(pair, rates, homogeneous)`` per pair: the balance indicator's conserved pairs (homogeneous) and
            the pairs broken only by a non-homogeneous activation.
    """

    def __init__(self, pairs: Sequence[tuple[BalancePair, PairRates | None, bool]] = ()) -> None:
        self.pairs = list(pairs)
        self._causes: dict[str, DriftCause] = {}

    def diagnose(
        self,
        init_squares: PairSquares,
        squares: PairSquares,
        *,
        steps: int,
        optimizer: torch.optim.Optimizer | None,
        model: nn.Module,
        explained: Mapping[str, float],
    ) -> list[DriftDiagnosis]:
        """The diagnosis of every pair whose weights both snapshots hold and whose initial scale is not zero.

        Args:
            init_squares: The unit squares of the step-0 weights.
            squares: The unit squares of the current weights.
            steps: Optimizer steps since initialisation.
            optimizer: The optimizer (``None``: unknown).
            model: The model (to match the optimizer's parameters by name).
            explained: ``pair name -> explained finite-step drift`` where known.

        Returns:
            One diagnosis per pair, in pair order.
        """
        found = []
        for pair, rates, homogeneous in self.pairs:
            if not (init_squares.holds(pair) and squares.holds(pair)):
                continue
            start, now = init_squares(pair), squares(pair)
            if not bool(unit_scales(start, rates).any()):
                continue  # all-zero at initialisation: no drift to diagnose (balance_drift is undefined)
            diagnosis = diagnose_drift(
                pair.name,
                unit_deltas(start, rates),
                unit_deltas(now, rates),
                unit_scales(start, rates),
                steps=steps,
                facts=None if optimizer is None else optimizer_facts(optimizer, model, pair.in_weight),
                homogeneous=homogeneous,
                explained=explained.get(pair.name),
            )
            if self._causes.get(pair.name) is not diagnosis.cause:
                logger.info("regimescope balance %s: %s - %s", pair.name, diagnosis.cause.value, diagnosis.message)
                self._causes[pair.name] = diagnosis.cause
            found.append(diagnosis)
        return found

    def state_dict(self) -> dict[str, str]:
        """The cause last announced per pair (plain strings), so a resumed run logs only changes."""
        return {pair: cause.name for pair, cause in self._causes.items()}

    def load_state_dict(self, state: Mapping[str, str]) -> None:
        """Restore :meth:`state_dict` output."""
        self._causes = {pair: DriftCause[name] for pair, name in state.items()}
