"""The parameters-added rule: parameters started training after ``attach()``, without step-0 references."""

from __future__ import annotations

from regimescope.alerts.observation import Observation
from regimescope.alerts.rule import AlertRule, Finding
from regimescope.tags import OUTSIDE_MODEL, PARAMETERS_ADDED, PARAMETERS_JOINED, below, by_layer

SHOWN = 5
"""Parameter names shown in the message; the rest are counted."""


def _shown(name: str) -> str:
    if name.startswith(OUTSIDE_MODEL):
        return f"the optimizer's parameter {name.rsplit('-', 1)[-1]}, a tensor outside the model"
    return f"`{name}`"


class ParametersAdded(AlertRule):
    """Alerts once per batch of parameters that started training after ``attach()`` (read from the markers
    :class:`~regimescope.indicators.trained_parameters.TrainedParameters` writes), naming them, the kernel blocks
    measured since step 0 they joined, and the fix."""

    kind = "parameters_added"
    meaning = (
        "the kernel, the weight panels and the verdict compare each measurement with the step-0 references taken at "
        "attach(), which cover only the parameters trained then. To monitor them, attach a new RegimeMonitor (its own "
        "logdir) once they train, or make them trainable before attach() (e.g. in a param group with lr=0 until you "
        "unfreeze them)."
    )

    def findings(self, observation: Observation) -> list[Finding]:
        """One finding when parameters first seen trained at this measurement are marked."""
        added = by_layer(observation.scalars, PARAMETERS_ADDED)
        if not added:
            return []
        names = list(added)
        joined = list(by_layer(observation.scalars, PARAMETERS_JOINED))
        more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
        layers = ", ".join(f"`{layer}`" for layer in joined)
        effect = (
            f"layer(s) {layers} were measured at step 0 without them and include them now, so their kernel blocks no "
            "longer compare the same parameters with step 0"
            if joined
            else "they are in no kernel block, weight panel or verdict"
        )
        return [
            Finding(
                key=below(PARAMETERS_ADDED) + ",".join(names),  # each batch of parameters is announced once
                message=(
                    f"{len(names)} parameter(s) started training after attach(): "
                    f"{', '.join(map(_shown, names[:SHOWN]))}{more}; {effect}"
                ),
                tag=PARAMETERS_ADDED,
                layer=", ".join(joined) or None,
                value=float(len(names)),
            )
        ]
