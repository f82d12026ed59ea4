"""Checking the ``RegimeMonitor`` options an adapter passes through, when the adapter is built."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from regimescope.integrations.stopping import StopCondition

from regimescope.capture.config import CaptureConfig
from regimescope.capture.sizing import check_choice
from regimescope.monitor import RegimeMonitor
from regimescope.probe import Probe
from regimescope.split_kernel import parse_sharing

KERNEL_OPTION_NAMES = ("mode", "implementation", "output_projection", "sketch")
"""The ``RegimeMonitor`` arguments that define which kernel is measured (the function, its estimator): every
measurement of a run, resumed or not, must use the same values, so adapters that rebuild themselves from saved
arguments keep these."""


def kernel_options(options: dict[str, Any]) -> dict[str, Any]:
    """The kernel options (:data:`KERNEL_OPTION_NAMES`) in ``options``, each with ``RegimeMonitor``'s default when
    absent: the one source of their names and defaults for every adapter."""
    parameters = inspect.signature(RegimeMonitor).parameters
    return {name: options.get(name, parameters[name].default) for name in KERNEL_OPTION_NAMES}


def monitor_options(adapter: str, options: dict[str, Any], supplied: Iterable[str]) -> dict[str, Any]:
    """Return ``options`` after checking that each is a ``RegimeMonitor`` argument the adapter does not supply.

    The ``distributed`` value and the kernel options (:data:`KERNEL_OPTION_NAMES`) are checked too, so that a
    misspelt or invalid one fails when the adapter is built rather than when training starts.

    Args:
        adapter: The adapter's class name, for the message.
        options: Extra keyword arguments given to the adapter, meant for ``RegimeMonitor``.
        supplied: ``RegimeMonitor`` arguments the adapter fills in itself (the model, the probe, ...).

    Raises:
        TypeError: For a name that ``RegimeMonitor`` does not take or that the adapter supplies, listing the
            names that may be passed.
        ValueError: For a ``distributed`` value that is not one of the allowed ones, or an invalid kernel option.
    """
    supplied = set(supplied)
    accepted = sorted(set(inspect.signature(RegimeMonitor).parameters) - supplied)
    wrong = sorted(name for name in options if name not in accepted)
    if wrong:
        raise TypeError(
            f"{adapter} got keyword arguments {wrong} that it cannot pass to RegimeMonitor: the adapter fills in "
            f"{sorted(supplied)} itself. Pass only {accepted}."
        )
    if "distributed" in options:
        parse_sharing(options["distributed"])
    CaptureConfig(**{name: options[name] for name in ("mode", "implementation", "sketch") if name in options})
    for name, minimum in (("output_projection", 1), ("measured_examples", 2)):
        if name in options:
            check_choice(name, options[name], minimum)
    return dict(options)


def adapter_arguments(
    adapter: str,
    options: dict[str, Any],
    supplied: Iterable[str],
    probe: Probe | Any | None,
    stop_on: str | Iterable[str] | None,
) -> tuple[dict[str, Any], StopCondition, Probe | None]:
    """The arguments every adapter checks when it is built: its monitor options, stop condition and probe.

    Returns:
        ``options`` checked by :func:`monitor_options`; ``stop_on`` parsed against the options' ``alert_rules``;
        ``probe`` as a :class:`Probe` (bare inputs wrapped in one), or ``None`` to draw one later.

    Raises:
        TypeError: As :func:`monitor_options`.
        ValueError: For an unknown ``stop_on`` name.
    """
    options = monitor_options(adapter, options, supplied)
    stop = StopCondition.parse(stop_on, options.get("alert_rules"))
    return options, stop, probe if probe is None or isinstance(probe, Probe) else Probe(probe)
