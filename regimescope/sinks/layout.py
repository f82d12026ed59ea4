"""The custom-scalars layout that groups regimescope's tags into TensorBoard panels."""

from __future__ import annotations

import re
from collections.abc import Iterable

from regimescope.tags import (
    BALANCE,
    BALANCE_DRIFT,
    BALANCE_EXPLAINED,
    BLOCK_FAMILY,
    BLOCK_KERNEL_DISTANCE,
    BLOCK_KERNEL_SHARE,
    BLOCK_WEIGHTS_RELATIVE_CHANGE,
    COST_FAMILY,
    KERNEL_DISTANCE,
    KERNEL_EFFECTIVE_RANK,
    KERNEL_FAMILY,
    KERNEL_NORM_RATIO,
    KERNEL_RELATIVE_CHANGE,
    KERNEL_SHARE,
    KERNEL_TARGET_ALIGNMENT,
    KERNEL_VELOCITY,
    NORMALIZATION_EVAL_GAP,
    NORMALIZATION_RUNNING_CHANGE,
    PATTERN_CHANGE,
    REGIME_LABEL,
    REGIME_SCORE,
    REPRESENTATION_CKA,
    REPRESENTATION_TARGET_ALIGNMENT,
    ROOT,
    WEIGHTS_RELATIVE_CHANGE,
    below,
    family_prefix,
    metric_of,
    noise_tag,
    tag,
)

CATEGORY = ROOT
"""Title of the one custom-scalars category regimescope writes."""

KERNEL_CHARTS = {
    metric_of(KERNEL_DISTANCE): "kernel distance from init S(K0, Kt)",
    metric_of(KERNEL_RELATIVE_CHANGE): "kernel relative change |Kt - K0| / |K0|",
    metric_of(KERNEL_NORM_RATIO): "kernel norm ratio |Kt| / |K0|",
    metric_of(KERNEL_VELOCITY): "kernel velocity (rad / step)",
    metric_of(KERNEL_TARGET_ALIGNMENT): "kernel-target alignment",
    metric_of(KERNEL_EFFECTIVE_RANK): "kernel effective rank",
}
"""Whole-model kernel metric -> its chart's title: one chart each, since their ranges differ by decades (S reads
``1e-6`` when the relative change reads 25), each with its measurement noise where estimated."""

_PER_LAYER_CHARTS = {
    "kernel distance from init, per layer": below(KERNEL_DISTANCE),
    "kernel share, per layer": below(KERNEL_SHARE),
    "weights relative change, per layer": below(WEIGHTS_RELATIVE_CHANGE),
    "noise of the kernel distance, per layer": below(noise_tag(KERNEL_DISTANCE)),
    "BatchNorm running statistics change, per layer": below(NORMALIZATION_RUNNING_CHANGE),
    "BatchNorm eval gap, per layer": below(NORMALIZATION_EVAL_GAP),
}
"""Per-layer charts (title -> how their tags start) of the families that the per-block summaries replace in the
layout of a deep model."""

_BLOCK_CHARTS = {
    "kernel distance from init, per block": below(BLOCK_KERNEL_DISTANCE),
    "kernel share, per block": below(BLOCK_KERNEL_SHARE),
    "weights relative change, per block": below(BLOCK_WEIGHTS_RELATIVE_CHANGE),
}

_OTHER_CHARTS = {
    "balance, per layer pair": below(BALANCE),
    "balance drift, per layer pair": below(BALANCE_DRIFT),
    "balance drift explained by the optimizer's steps, per layer pair": below(BALANCE_EXPLAINED),
    "noise of the balance drift, per layer pair": below(noise_tag(BALANCE_DRIFT)),
    "representation CKA to init, per layer": below(REPRESENTATION_CKA),
    "representation target alignment, per layer": below(REPRESENTATION_TARGET_ALIGNMENT),
    "activation pattern change, per layer": below(PATTERN_CHANGE),
    "cost": family_prefix(COST_FAMILY),
}


def _exactly(*tags: str) -> list[str]:
    """Anchored regexes matching exactly ``tags`` (so a whole-model tag does not also pull in its layers)."""
    return [f"^{re.escape(t)}$" for t in tags]


def _starting(prefix: str) -> str:
    """The regex of every tag that starts with ``prefix`` (TensorBoard matches from the start)."""
    return f"{prefix}.*"


def _fixed_charts(summarised: bool) -> dict[str, list[str]]:
    """The charts of the contract's families; ``summarised``: per-block charts in place of the long per-layer ones."""
    charts = {"regime (score, label)": _exactly(REGIME_SCORE, REGIME_LABEL)}
    for metric, title in KERNEL_CHARTS.items():
        kernel_tag = tag(KERNEL_FAMILY, metric)
        charts[title] = _exactly(kernel_tag, noise_tag(kernel_tag))
    charts["BatchNorm statistics, mean over layers"] = _exactly(NORMALIZATION_RUNNING_CHANGE, NORMALIZATION_EVAL_GAP)
    prefixes = {**(_BLOCK_CHARTS if summarised else _PER_LAYER_CHARTS), **_OTHER_CHARTS}
    charts.update({title: [_starting(prefix)] for title, prefix in prefixes.items()})
    return charts


def build_layout(tags: Iterable[str]) -> dict[str, dict[str, list[str | list[str]]]]:
    """Build the custom-scalars layout for ``SummaryWriter.add_custom_scalars``.

    The layout has one category, ``"regimescope"``. Its charts are fixed for the families of the tag contract
    (design.md, section 3): the regime score and label together; one chart per whole-model kernel metric (with its
    noise estimate), since their ranges differ by decades and a shared linear axis flattens the kernel distance to
    zero; and one multiline chart per per-layer family whose tags are regexes (e.g. ``regimescope/balance/.*``), so
    layers that appear later still land in their chart.

    A deep model (one whose first record has per-block summaries, ``regimescope/blocks/...``: more than 12
    parameter layers, see :mod:`regimescope.indicators.layer_summary`) gets the per-block charts in place of the
    per-layer charts of kernel distance, kernel share, weight change, kernel-distance noise and BatchNorm statistics,
    which would hold one line per layer (41 for a ResNet-18; the BatchNorm statistics keep their means over layers). Those per-layer tags are still written, and read in TensorBoard's Scalars
    tab, the regimescope tab and the report.

    TensorBoard keeps only the first layout of a run, which is why the charts depend on nothing but whether the
    first record has block summaries. Tags under ``regimescope/`` that no chart matches (an indicator added outside
    the contract) get one chart per ``regimescope/<family>/<metric>``; tags outside ``regimescope/`` are ignored.

    Args:
        tags: Scalar tags seen so far (the first record's).

    Returns:
        ``{"regimescope": {chart title: ["Multiline", [tag regex, ...]]}}``.
    """
    names = list(tags)
    summarised = any(name.startswith(family_prefix(BLOCK_FAMILY)) for name in names)
    charts = _fixed_charts(summarised)
    contract = {**_fixed_charts(summarised=False), **_fixed_charts(summarised=True)}
    patterns = [re.compile(regex) for regexes in contract.values() for regex in regexes]
    extra: dict[str, str] = {}
    for name in names:
        parts = name.split("/")
        if parts[0] != ROOT or len(parts) < 2 or any(p.match(name) for p in patterns):
            continue
        title = "/".join(parts[1:3])
        extra[title] = "^" + re.escape("/".join(parts[:3])) + "(/.*)?$"
    for title in sorted(extra):
        charts.setdefault(title, [extra[title]])
    return {CATEGORY: {title: ["Multiline", regexes] for title, regexes in charts.items()}}
