"""Alerts: rules over measurements and verdicts (with patience, cool-down and noise awareness), and their delivery.

Built-in rules: :class:`RegimeShift`, :class:`KernelJump`, :class:`ConservationBroken`, :class:`NonFinite`,
:class:`ParametersAdded`; user
rules: :class:`Threshold` over any tag, or a subclass of :class:`AlertRule`.
"""

from regimescope.alerts.alert import Alert
from regimescope.alerts.conservation_broken import ConservationBroken
from regimescope.alerts.defaults import default_rules
from regimescope.alerts.dispatch import AlertDispatcher
from regimescope.alerts.kernel_jump import KernelJump
from regimescope.alerts.non_finite import NonFinite
from regimescope.alerts.observation import Observation
from regimescope.alerts.parameters_added import ParametersAdded
from regimescope.alerts.regime_shift import RegimeShift
from regimescope.alerts.rule import AlertRule, Finding
from regimescope.alerts.threshold import Threshold
from regimescope.alerts.warning import RegimeWarning
from regimescope.alerts.watch import AlertWatch

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertRule",
    "AlertWatch",
    "ConservationBroken",
    "Finding",
    "KernelJump",
    "NonFinite",
    "Observation",
    "ParametersAdded",
    "RegimeShift",
    "RegimeWarning",
    "Threshold",
    "default_rules",
]
