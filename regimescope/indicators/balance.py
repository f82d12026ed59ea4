"""Layer balance: the per-unit conserved quantities of each layer pair, how far they drifted since init, how much of
that drift the optimizer's finite steps explain, and what caused it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.conservation.attention import find_attention_pairs
from regimescope.conservation.balance_pair import BalancePair
from regimescope.conservation.diagnosis import DriftDiagnoser, diagnosis_markdown
from regimescope.conservation.explained_drift import ExplainedDrift
from regimescope.conservation.learning_rates import PairRates, pair_rates
from regimescope.conservation.pairs import Break
from regimescope.conservation.quantities import (
    PairSquares,
    balance_drift,
    mean_balance,
    unit_deltas,
    unit_scales,
    unit_squares,
)
from regimescope.conservation.summary import cause_label, count_summary
from regimescope.indicators.base import Context, Direction, Indicator, Output, Reference
from regimescope.record import Record
from regimescope.tags import (
    BALANCE,
    BALANCE_DRIFT,
    BALANCE_EXPLAINED,
    BALANCE_UNITS,
    CONSERVATION_DIAGNOSIS,
    by_layer,
    layer_tag,
    noise_tag,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Tracked:
    """A pair the indicator follows, with the rates fixed at setup."""

    pair: BalancePair
    rates: PairRates | None


class BalanceIndicator(Indicator):
    """Per-unit layer balance ``delta_k`` of every conserved layer pair, its drift since initialisation, the drift the
    optimizer's finite steps explain, and the cause of the drift.

    For a pair with only positively homogeneous ops between (theory.md section 2), per hidden unit ``k``:
    ``delta_k = |a_k|^2 / eta_out - (|w_k|^2 + b_k^2) / eta_in`` (plain ``|a_k|^2 - |w_k|^2 - b_k^2`` when the pair's
    rates are equal), ``s_k`` the matching sum, ``rho_k = delta_k / s_k`` in ``[-1, 1]``.

    Tags, per pair ``<in>-<out>``:

    - ``regimescope/balance/<pair>``: mean of ``rho_k`` over units. ``> 0`` upstream (the earlier layer is small:
      prone to rich, rapid feature learning), ``0`` balanced, ``< 0`` downstream (prone to lazy training).
    - ``regimescope/balance_drift/<pair>``: ``|delta_t - delta_0|_2 / |s_0|_2``. Normalised by the initial scales
      ``s_0``, not by ``delta_0``, because balanced initialisations have ``delta_0 = 0``. Near 0 when conservation
      holds (small-step GD/SGD: ``~ eta``); large when it is broken (Adam, weight decay): then the initial balance
      no longer predicts the regime. Its noise is the rounding floor of float training.
    - ``regimescope/balance_explained/<pair>``: the largest drift the optimizer's plain gradient steps explain
      (:class:`~regimescope.conservation.explained_drift.ExplainedDrift`, accumulated after every optimizer step
      when an optimizer is attached and its gradients are readable).
    - ``regimescope/balance_units/<pair>`` (histogram): ``delta_k`` now.
    - ``regimescope/conservation/diagnosis`` (text, after step 0): what moved each pair's balance (gradient flow,
      finite steps, weight decay, an adaptive optimizer, a non-homogeneous activation), with the numbers.

    Pairs are layer pairs (a norm layer's affine counts as the incoming layer) and attention heads
    (:func:`regimescope.conservation.find_pairs`). Pairs that are not conserved (non-homogeneous activations, norms,
    residual additions, frozen or tied parameters, weights a parametrization computes) are not reported; so are,
    when learning rates are known, pairs with a parameter the optimizer does not train, and pairs whose units all
    have zero weights at setup (``rho_k = 0 / 0``: no balance, and no gradient moves them). Setup logs one line
    counting them by cause; :attr:`skipped` holds every pair left out with its reason. Pairs broken only by a
    non-homogeneous activation are still diagnosed. Learning rates are read from ``context.learning_rates`` once,
    at setup: only their ratios matter, so a schedule applied to every param group alike leaves the quantities
    conserved. The balance averages ``rho_k`` over the units with any weight (a dead unit has none); a drift that
    is undefined (zero initial scale) is left out of the record, never written as ``inf``.

    Args:
        pairs: The pairs to follow; by default found by tracing the model with ``torch.fx`` plus its
            ``nn.MultiheadAttention`` heads. Pass them (built with :func:`regimescope.conservation.layer_pair` or
            :func:`regimescope.conservation.attention_pairs`) for models that cannot be traced.

    Attributes:
        skipped: ``pair name -> why it is not reported``, filled by :meth:`setup`.
    """

    name = "balance"
    needs = frozenset({Need.WEIGHTS})
    reference = Reference.INIT
    outputs = (
        Output(BALANCE, Direction.HIGHER, per_layer=True),
        Output(BALANCE_DRIFT, per_layer=True, noisy=True),
        Output(BALANCE_EXPLAINED, per_layer=True),
        Output(BALANCE_UNITS, per_layer=True),
        Output(CONSERVATION_DIAGNOSIS),
    )

    def __init__(self, pairs: Sequence[BalancePair] | None = None) -> None:
        self._pairs = None if pairs is None else tuple(pairs)
        self.tracked: tuple[_Tracked, ...] = ()
        self.non_homogeneous: tuple[_Tracked, ...] = ()
        self._explained: ExplainedDrift | None = None
        self._diagnoser = DriftDiagnoser()
        self._start: tuple[Snapshot, PairSquares] | None = None
        self.skipped: dict[str, str] = {}

    @staticmethod
    def _find(context: Context) -> tuple[BalancePair, ...]:
        """Every pair of the model; any failure of the discovery becomes a ``ValueError`` (the indicator is then
        turned off at ``attach()``; it never crashes it)."""
        try:
            return (*context.layer_pairs(), *find_attention_pairs(context.model))
        except ValueError:
            raise
        except Exception as error:
            raise ValueError(
                f"Finding the layer pairs of {type(context.model).__name__} failed ({type(error).__name__}: {error}). "
                "Name them yourself with regimescope.conservation.layer_pair(model, 'fc1', 'fc2') and pass "
                "BalanceIndicator(pairs=[...])."
            ) from error

    def setup(self, context: Context) -> None:
        """Find the layer pairs once, fix the rates each pair uses, and start the explained-drift accumulation.

        Raises:
            ValueError: When the model cannot be traced (or discovery fails) and no ``pairs`` were given (the
                message says how to name them).
        """
        pairs = self._find(context) if self._pairs is None else self._pairs
        weights = {name: p.detach() for name, p in context.model.named_parameters(remove_duplicate=False)}
        tracked: list[_Tracked] = []
        non_homogeneous: list[_Tracked] = []
        skipped: list[tuple[BalancePair, str, str]] = []  # (pair, cause label, reason)
        for pair in pairs:
            diagnosable = pair.breaks == {Break.NON_HOMOGENEOUS}
            if not pair.conserved and not diagnosable:
                skipped.append((pair, cause_label(pair.breaks), pair.reason))
                continue
            try:
                rates = pair_rates(pair, context.learning_rates)
            except ValueError as error:
                skipped.append((pair, "not trained by the optimizer", str(error)))
                continue
            try:
                dead = not bool(unit_scales(unit_squares(pair, weights), rates).any())
            except ValueError as error:
                skipped.append((pair, "weights not found", str(error)))
                continue
            if dead:
                reason = "every unit has zero incoming and outgoing weights: rho_k = 0 / 0, the balance is undefined"
                skipped.append((pair, "all-zero", reason))
            elif pair.conserved:
                tracked.append(_Tracked(pair=pair, rates=rates))
            else:
                skipped.append((pair, cause_label(pair.breaks), pair.reason))
                non_homogeneous.append(_Tracked(pair=pair, rates=rates))
        self.skipped = {pair.name: reason for pair, _, reason in skipped}
        if skipped:
            logger.info(
                "The balance indicator reports %d of %d pair(s); not reported: %s. Reasons: BalanceIndicator.skipped.",
                len(tracked),
                len(pairs),
                count_summary((label, pair.name) for pair, label, _ in skipped),
            )
            details = "\n  ".join(f"{name}: {reason}" for name, reason in self.skipped.items())
            logger.debug("Pairs the balance indicator does not report:\n  %s", details)
        self.tracked, self.non_homogeneous = tuple(tracked), tuple(non_homogeneous)
        self._start = None
        homogeneous = [(t.pair, t.rates, True) for t in self.tracked]
        self._diagnoser = DriftDiagnoser(homogeneous + [(t.pair, t.rates, False) for t in self.non_homogeneous])
        self._explained = None
        if context.optimizer is not None and context.gradients_readable and self.tracked:
            self._explained = ExplainedDrift([(t.pair, t.rates) for t in self.tracked])
            self._explained.start(context.model)

    def applicable(self, context: Context) -> bool:
        """Whether setup found a pair to report or to diagnose."""
        return bool(self.tracked or self.non_homogeneous)

    @property
    def observes_steps(self) -> bool:
        """Whether the explained drift is accumulated after every optimizer step."""
        return self._explained is not None

    def observe_step(self, optimizer: torch.optim.Optimizer, steps: int = 1) -> None:
        """Add the step the optimizer just took, standing for ``steps`` steps, to the explained drift."""
        if self._explained is not None:
            self._explained.observe(optimizer, steps)

    def compute(self, current: Snapshot, reference: Snapshot | None, context: Context) -> Record:
        """Balance, drift since ``reference`` (the step-0 snapshot; ``current`` itself when ``None``), units, the
        explained drift with the drift's rounding floor, and the diagnosis."""
        start = current if reference is None else reference
        record = Record(current.step)
        init, now = self._start_squares(start), PairSquares(current.weights)
        for item in self.tracked:
            squares, initial = now(item.pair), init(item.pair)
            delta = unit_deltas(squares, item.rates)
            balance = mean_balance(squares, item.rates)
            drift = balance_drift(delta, unit_deltas(initial, item.rates), unit_scales(initial, item.rates))
            if balance is not None:
                record.scalars[layer_tag(BALANCE, item.pair.name)] = balance
            if drift is not None:
                record.scalars[layer_tag(BALANCE_DRIFT, item.pair.name)] = drift
            record.histograms[layer_tag(BALANCE_UNITS, item.pair.name)] = delta.cpu().numpy()
        explained: dict[str, float] = {}
        if self._explained is not None:
            explained = self._explained.scalars()
            record.scalars.update(explained)
            floors = self._explained.noise(now)
            record.scalars.update({noise_tag(name): floor for name, floor in floors.items()})
        if current.step > start.step:
            found = self._diagnoser.diagnose(
                init,
                now,
                steps=current.step - start.step,
                optimizer=context.optimizer,
                model=context.trained,
                explained=by_layer(explained, BALANCE_EXPLAINED),
            )
            if found:
                record.texts[CONSERVATION_DIAGNOSIS] = diagnosis_markdown(found, current.step)
        return record

    def _start_squares(self, start: Snapshot) -> PairSquares:
        """The unit squares of ``start`` (the step-0 snapshot), kept while it stays the reference: each pair's are
        computed once per run, not at every measurement."""
        if self._start is None or self._start[0] is not start:
            self._start = (start, PairSquares(start.weights))
        return self._start[1]

    def state_dict(self) -> dict[str, Any]:
        """The explained drift's budgets and the causes already announced."""
        return {
            "explained_drift": None if self._explained is None else self._explained.state_dict(),
            "diagnoser": self._diagnoser.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (after :meth:`setup`)."""
        if self._explained is not None and state.get("explained_drift") is not None:
            self._explained.load_state_dict(state["explained_drift"])
        self._diagnoser.load_state_dict(state.get("diagnoser", {}))
