"""Every TensorBoard tag and label name regimescope writes, in one light module (no torch, no numpy).

Tags are ``regimescope/<family>/<metric>[/<layer>]``; TensorBoard groups panels by the first two parts. The names
below are a contract (``docs/tags.md`` lists them): indicators, the verdict, alert rules, sinks, the report, the
TensorBoard plugin and the command line all read them from here, so a tag is spelled once.

Per-layer quantities are written under ``<base>/<layer>`` (e.g. ``regimescope/kernel/distance_from_init/fc1``),
where ``<base>`` is one of the constants below; :func:`layer_tag` builds such a tag and :func:`by_layer` reads a
family back from a record's scalars.
"""

from __future__ import annotations

from collections.abc import Mapping

ROOT = "regimescope"
"""First part of every tag."""

LAZY = "lazy"
"""Label of a run whose kernel stays near its initial value: it trains as its linearisation."""
TRANSITIONAL = "transitional"
"""Label of a run whose kernel has started to move."""
RICH = "rich"
"""Label of a run whose kernel moved far from its initial value: it learns features."""
LABELS = (LAZY, TRANSITIONAL, RICH)
"""Verdict label names; a label's index is the value logged under :data:`REGIME_LABEL`."""


def tag(family: str, metric: str, layer: str | None = None) -> str:
    """Build the tag ``regimescope/<family>/<metric>[/<layer>]``.

    Args:
        family: Panel group, e.g. ``"kernel"``.
        metric: Metric name inside the family, e.g. ``"distance_from_init"``.
        layer: Optional layer (or layer pair) name appended as the last part; dots are kept (``"features.0"``).

    Returns:
        The tag string.
    """
    parts = [ROOT, family, metric]
    if layer is not None:
        parts.append(layer)
    return "/".join(parts)


def below(base: str) -> str:
    """``<base>/``: how every tag under ``base`` starts (each layer's tag of a per-layer quantity, a family's tags)."""
    return f"{base}/"


def layer_tag(base: str, layer: str) -> str:
    """``<base>/<layer>``: the tag of one layer's (or layer pair's) value of a per-layer quantity."""
    return below(base) + layer


def family_prefix(family: str) -> str:
    """``regimescope/<family>/``: how every tag of ``family`` starts."""
    return below(f"{ROOT}/{family}")


def metric_of(name: str) -> str:
    """The ``<metric>`` part of a tag ``regimescope/<family>/<metric>[/<layer>]`` (``"distance_from_init"``)."""
    return name.split("/")[2]


def by_layer(values: Mapping[str, float], base: str) -> dict[str, float]:
    """``layer -> value`` of every entry of ``values`` written under ``<base>/<layer>``."""
    prefix = below(base)
    return {name[len(prefix) :]: value for name, value in values.items() if name.startswith(prefix)}


# ----------------------------------------------------------------------------------------------------- regime
REGIME_SCORE = tag("regime", "score")
"""Richness score in ``[0, 1]``."""
REGIME_LABEL = tag("regime", "label")
"""Label index: 0 lazy, 1 transitional, 2 rich (:data:`LABELS`)."""
REGIME_EXPLANATION = tag("regime", "explanation")
"""Text: which evidence drove the verdict."""
REGIME_FORECAST = tag("regime", "forecast")
"""Text: the regime forecast from the initialisation (written with the first verdict)."""

# ----------------------------------------------------------------------------------------------------- kernel
KERNEL_FAMILY = "kernel"
"""Family of the kernel indicators: ``regimescope/kernel/<metric>[/<layer>]``."""
KERNEL_DISTANCE = tag(KERNEL_FAMILY, "distance_from_init")
"""``S(K_0, K_t)``; per layer under ``<tag>/<layer>``."""
KERNEL_RELATIVE_CHANGE = tag(KERNEL_FAMILY, "relative_change")
"""``|K_t - K_0|_F / |K_0|_F``."""
KERNEL_NORM_RATIO = tag(KERNEL_FAMILY, "norm_ratio")
"""``|K_t|_F / |K_0|_F``."""
KERNEL_VELOCITY = tag(KERNEL_FAMILY, "velocity")
"""Angle turned per step since the previous measurement."""
KERNEL_TARGET_ALIGNMENT = tag(KERNEL_FAMILY, "target_alignment")
"""Centred kernel-target alignment."""
KERNEL_EFFECTIVE_RANK = tag(KERNEL_FAMILY, "effective_rank")
"""Effective rank of ``K_t``."""
KERNEL_SHARE = tag(KERNEL_FAMILY, "share")
"""Per layer: ``tr K_l / tr K``."""
KERNEL_HEATMAP = tag(KERNEL_FAMILY, "heatmap")
"""Image of the kernel (at a low rate)."""
KERNEL_BLOCK_VALUE = tag(KERNEL_FAMILY, "block")
"""Per layer: the first non-finite entry of a kernel block (written only when there is one)."""

# -------------------------------------------------------------------------------------------- balance, weights
BALANCE = f"{ROOT}/balance"
"""Per layer pair ``<tag>/<pair>``: mean normalised balance ``rho_k``."""
BALANCE_DRIFT = f"{ROOT}/balance_drift"
"""Per pair: ``|delta_t - delta_0|_2 / |s_0|_2``."""
BALANCE_EXPLAINED = f"{ROOT}/balance_explained"
"""Per pair: the drift finite gradient steps explain, normalised like the drift."""
BALANCE_UNITS = f"{ROOT}/balance_units"
"""Per pair (histogram): ``delta_k`` now."""
PAIR_SCALARS = (BALANCE, BALANCE_DRIFT, BALANCE_EXPLAINED)
"""The per-pair scalars: the third part of their tags is a layer pair (``regimescope/balance/fc1-fc2``)."""
CONSERVATION_DIAGNOSIS = tag("conservation", "diagnosis")
"""Text: what moved each pair's balance since step 0."""
WEIGHTS_RELATIVE_CHANGE = tag("weights", "relative_change")
"""Per layer: ``|W_t - W_0|_F / |W_0|_F``."""
WEIGHTS_CHANGE = tag("weights", "change")
"""Per layer that starts at zero: ``|W_t - W_0|_F = |W_t|_F`` (its relative change is undefined)."""
WEIGHTS_VALUE = tag("weights", "value")
"""Per parameter: its first non-finite value (written only when there is one)."""
OUTPUTS_VALUE = tag("outputs", "value")
"""The first non-finite model output on the probe (written only when there is one)."""

PARAMETERS_ADDED = tag("parameters", "added")
"""Per parameter (``<tag>/<name>``), 1 at the measurement that first sees it trained after ``attach()`` (it has no
step-0 reference)."""
PARAMETERS_JOINED = tag("parameters", "joined")
"""Per kernel block measured since step 0 (``<tag>/<block>``), at the same measurement: how many of those parameters
joined it (its distance from step 0 then compares other parameter sets)."""
OUTSIDE_MODEL = "outside-model"
"""The ``<name>`` part of :data:`PARAMETERS_ADDED` for a trained tensor that is not a parameter of the model, followed
by its position among the optimizer's parameters (``outside-model-4``)."""

# ----------------------------------------------------------------------------------------------- block summaries
BLOCK_FAMILY = "blocks"
"""Family of the per-block summaries (``regimescope/blocks/<metric>/<block>``), written for deep models only."""
BLOCK_KERNEL_DISTANCE = tag(BLOCK_FAMILY, "kernel_distance_from_init")
"""Per block of layers (``layer2.0``): ``S(K_{b,0}, K_{b,t})`` of the block's part of the kernel."""
BLOCK_KERNEL_SHARE = tag(BLOCK_FAMILY, "kernel_share")
"""Per block: ``tr K_b / tr K``."""
BLOCK_WEIGHTS_RELATIVE_CHANGE = tag(BLOCK_FAMILY, "weights_relative_change")
"""Per block: ``|W_{b,t} - W_{b,0}|_F / |W_{b,0}|_F``."""

# --------------------------------------------------------------------------------------- normalisation statistics
NORMALIZATION_RUNNING_CHANGE = tag("normalization", "running_change")
"""Per BatchNorm layer (and the mean): how far the running statistics moved since step 0 (never feature learning)."""
NORMALIZATION_EVAL_GAP = tag("normalization", "eval_gap")
"""Per BatchNorm layer (and the mean): how far eval-mode statistics are from the probe's batch statistics."""

# ------------------------------------------------------------------------------------ representations, patterns
REPRESENTATION_CKA = tag("representation", "cka_to_init")
"""Per layer: linear CKA of the features now vs at init."""
REPRESENTATION_TARGET_ALIGNMENT = tag("representation", "target_alignment")
"""Per layer: CKA of the features with the targets."""
PATTERN_CHANGE = tag("activations", "pattern_change")
"""Per layer: fraction of on/off states changed since init."""

# --------------------------------------------------------------------------------------- alerts, cost, noise
ALERTS = f"{ROOT}/alerts"
"""Text: alerts and measurement failures."""
COST_FAMILY = "cost"
"""Family of the monitor's own cost: ``regimescope/cost/<metric>``."""
COST_SECONDS = tag(COST_FAMILY, "seconds")
"""Wall time of the measurement."""
COST_FRACTION = tag(COST_FAMILY, "fraction")
"""The monitor's overhead since ``attach()``: its seconds over the training's (``m / (w - m)``)."""
COST_BUDGET_DEFERRED = tag(COST_FAMILY, "budget_deferred")
"""Scheduled measurements deferred so far to keep the monitor within ``max_overhead``."""
COST_NOTES = tag(COST_FAMILY, "notes")
"""Text: what the monitor chose to keep its cost within budget (measurement sizing, deferred measurements)."""

# ----------------------------------------------------------------------------------------------------- sweeps
SWEEP_FAMILY = "sweep"
"""Family of a sweep's HParams metrics (``rs.sweep``): one value per point, at the point's last step."""
SWEEP_SCORE = tag(SWEEP_FAMILY, "score")
"""A point's final richness score."""
SWEEP_DISTANCE = tag(SWEEP_FAMILY, "distance")
"""A point's final ``S(K_0, K_T)``."""
SWEEP_CHANGE = tag(SWEEP_FAMILY, "change")
"""A point's final ``|K_T - K_0|_F / |K_0|_F``."""
SWEEP_GROWTH = tag(SWEEP_FAMILY, "growth")
"""A point's final ``|K_T|_F / |K_0|_F``."""
SWEEP_TIME_TO_RICH = tag(SWEEP_FAMILY, "time_to_rich")
"""The first step a point was labelled rich (absent if never)."""
SWEEP_FORECAST_RATIO = tag(SWEEP_FAMILY, "forecast_ratio")
"""A point's step-0 forecast: the kernel change its linearised fit needs, on all directions."""
SWEEP_FORECAST_FAST = tag(SWEEP_FAMILY, "forecast_fast")
"""A point's step-0 forecast on the fast directions only."""
SWEEP_FAILED = tag(SWEEP_FAMILY, "failed")
"""1 when a point raised (its error is in the sweep's table)."""

NOISE_FAMILY = "noise"
"""Noise estimates (one standard error) live under ``regimescope/noise/<the rest of the tag they qualify>``."""


def noise_tag(quantity_tag: str) -> str:
    """The tag the noise of ``quantity_tag`` is logged under: ``regimescope/noise/<rest of the tag>``."""
    return family_prefix(NOISE_FAMILY) + quantity_tag.removeprefix(below(ROOT))


def noise_of(values: Mapping[str, float]) -> dict[str, float]:
    """``quantity tag -> noise`` for every noise estimate in ``values`` (the inverse of :func:`noise_tag`)."""
    prefix = family_prefix(NOISE_FAMILY)
    return {below(ROOT) + name[len(prefix) :]: value for name, value in values.items() if name.startswith(prefix)}
