"""A monitor's indicators as one unit: set up once, run on each capture in declared order, saved and restored."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from regimescope.capture.needs import Need
from regimescope.capture.snapshot import Snapshot
from regimescope.indicators.base import Context, Indicator, Reference
from regimescope.record import Record

logger = logging.getLogger(__name__)

_SNAPSHOT_FIELDS = {
    Need.WEIGHTS: ("weights",),
    Need.OUTPUTS: ("outputs",),
    Need.FEATURES: ("features",),
    Need.ACTIVATION_PATTERNS: ("activation_patterns",),
    Need.KERNEL: ("layer_kernels", "layer_kernel_halves"),
    Need.NORMALIZATION: ("normalization",),
}


def merged_needs(indicators: Iterable[Indicator]) -> set[Need]:
    """Union of the ``needs`` of ``indicators``."""
    merged: set[Need] = set()
    for indicator in indicators:
        merged |= set(indicator.needs)
    return merged


class IndicatorSuite:
    """The indicators a monitor runs, driven only by what each declares.

    At :meth:`setup` every indicator validates itself against the model and probe; the ones that do not apply are
    dropped. At each capture :meth:`compute` runs the screening indicators first (a non-empty screening record means
    the capture is unusable: the others are skipped), then the rest in order, each against the reference snapshot
    it declared. A non-finite value from a non-screening indicator is an undefined quantity on a healthy model (a
    ratio over zero), not a measurement: it is left out of the record, and the first time that happens for a tag
    it is logged.

    Args:
        indicators: The indicators, in the order their records are merged.
        user_given: Whether the user chose them: then an indicator that cannot work on the model raises at
            :meth:`setup` instead of being switched off with a warning.

    Raises:
        ValueError: When two indicators share a name (their checkpoint states would collide).
    """

    def __init__(self, indicators: Iterable[Indicator], *, user_given: bool = False) -> None:
        self.indicators = list(indicators)
        self.user_given = user_given
        names = [indicator.name for indicator in self.indicators]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"Indicator names must be unique (they key checkpoint state); repeated: {duplicated}.")
        self._undefined: set[str] = set()

    def setup(self, context: Context) -> None:
        """Set every indicator up on ``context`` and keep those that apply.

        Raises:
            ValueError: From a user-given indicator that cannot work on this model (the message says why).
        """
        active = []
        for indicator in self.indicators:
            try:
                indicator.setup(context)
            except ValueError as error:
                if self.user_given:
                    raise
                logger.warning("regimescope: indicator %r is off for this model: %s", indicator.name, error)
                continue
            if indicator.applicable(context):
                active.append(indicator)
        self.indicators = active

    @property
    def needs(self) -> set[Need]:
        """What one capture must provide for every active indicator."""
        return merged_needs(self.indicators)

    @property
    def observers(self) -> list[Indicator]:
        """The indicators that read every optimizer step."""
        return [indicator for indicator in self.indicators if indicator.observes_steps]

    def retained(self, snapshot: Snapshot, reference: Reference) -> Snapshot:
        """A copy of ``snapshot`` holding only what the indicators comparing against ``reference`` read later."""
        kept = Snapshot(step=snapshot.step)
        for need in merged_needs(i for i in self.indicators if i.reference == reference):
            for name in _SNAPSHOT_FIELDS[need]:
                setattr(kept, name, getattr(snapshot, name))
        return kept

    def observe_step(self, optimizer: torch.optim.Optimizer, steps: int = 1) -> None:
        """Let every observing indicator read the optimizer step just taken, standing for ``steps`` steps."""
        for indicator in self.observers:
            indicator.observe_step(optimizer, steps)

    def compute(
        self, snapshot: Snapshot, references: Mapping[Reference, Snapshot | None], context: Context
    ) -> tuple[Record, bool]:
        """Run the indicators on ``snapshot``.

        Args:
            snapshot: The capture just made.
            references: The snapshot for each :class:`Reference` (``None`` where there is none yet).
            context: Model, probe, learning rates, optimizer.

        Returns:
            ``(record, usable)``: the merged record, and whether the capture passed screening (when it did not, the
            record holds only the screening indicators' markers).
        """
        record = Record(snapshot.step)
        for indicator in (i for i in self.indicators if i.screens):
            record.merge(indicator.compute(snapshot, references[indicator.reference], context))
        if record.scalars:
            return record, False
        for indicator in (i for i in self.indicators if not i.screens):
            found = indicator.compute(snapshot, references[indicator.reference], context)
            self._leave_out_undefined(indicator, found)
            record.merge(found)
        return record, True

    def _leave_out_undefined(self, indicator: Indicator, record: Record) -> None:
        for name in [name for name, value in record.scalars.items() if not math.isfinite(value)]:
            del record.scalars[name]
            if name not in self._undefined:
                self._undefined.add(name)
                logger.info(
                    "regimescope: %s is undefined on this model (indicator %r gave a non-finite value on finite "
                    "weights, a ratio over zero); it is left out of the records.",
                    name,
                    indicator.name,
                )

    def state_dict(self) -> dict[str, Any]:
        """Each active indicator's state, by name."""
        return {indicator.name: indicator.state_dict() for indicator in self.indicators}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output into the indicators of the same names (after :meth:`setup`)."""
        for indicator in self.indicators:
            if indicator.name in state:
                indicator.load_state_dict(state[indicator.name])
