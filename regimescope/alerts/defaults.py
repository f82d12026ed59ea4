"""The alert rules a monitor uses when the user names none."""

from __future__ import annotations

from regimescope.alerts.conservation_broken import ConservationBroken
from regimescope.alerts.kernel_jump import KernelJump
from regimescope.alerts.non_finite import NonFinite
from regimescope.alerts.parameters_added import ParametersAdded
from regimescope.alerts.regime_shift import RegimeShift
from regimescope.alerts.rule import AlertRule


def default_rules() -> list[AlertRule]:
    """Regime shift, kernel jump, conservation broken, non-finite values and parameters added after ``attach()``,
    with their default settings."""
    return [RegimeShift(), KernelJump(), ConservationBroken(), NonFinite(), ParametersAdded()]
