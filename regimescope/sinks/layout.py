"""The custom-scalars layout that groups regimescope's tags into TensorBoard panels."""

from __future__ import annotations

import re
from collections.abc import Iterable

from regimescope.tags import ROOT, tag

CATEGORY = ROOT
"""Title of the one custom-scalars category regimescope writes."""

KERNEL_CHARTS = {
    "distance_from_init": "kernel distance from init S(K0, Kt)",
    "relative_change": "kernel relative change |Kt - K0| / |K0|",
    "norm_ratio": "kernel norm ratio |Kt| / |K0|",
    "velocity": "kernel velocity (rad / step)",
    "target_alignment": "kernel-target alignment",
    "effective_rank": "kernel effective rank",
}
"""Whole-model kernel metric -> its chart's title: one chart each, since their ranges differ by decades (S reads
``1e-6`` when the relative change reads 25), each with its measurement noise where estimated."""

BLOCK_FAMILY = "blocks"
"""Family of the per-block summaries (:mod:`regimescope.indicators.layer_summary`)."""

_PER_LAYER_CHARTS = {
    "kernel distance from init, per layer": ("kernel", "distance_from_init"),
    "kernel share, per layer": ("kernel", "share"),
    "weights relative change, per layer": ("weights", "relative_change"),
    "noise of the kernel distance, per layer": ("noise/kernel", "distance_from_init"),
    "BatchNorm running statistics change, per layer": ("normalization", "running_change"),
    "BatchNorm eval gap, per layer": ("normalization", "eval_gap"),
}
"""Per-layer charts of the families that the per-block summaries replace in the layout of a deep model."""

_BLOCK_CHARTS = {
    "kernel distance from init, per block": "kernel_distance_from_init",
    "kernel share, per block": "kernel_share",
    "weights relative change, per block": "weights_relative_change",
}

_OTHER_CHARTS = {
    "balance, per layer pair": ("balance", None),
    "balance drift, per layer pair": ("balance_drift", None),
    "balance drift explained by the optimizer's steps, per layer pair": ("balance_explained", None),
    "noise of the balance drift, per layer pair": ("noise", "balance_drift"),
    "representation CKA to init, per layer": ("representation", "cka_to_init"),
    "representation target alignment, per layer": ("representation", "target_alignment"),
    "activation pattern change, per layer": ("activations", "pattern_change"),
    "cost": ("cost", None),
}


def _exactly(*tags: str) -> list[str]:
    """Anchored regexes matching exactly ``tags`` (so a whole-model tag does not also pull in its layers)."""
    return [f"^{re.escape(t)}$" for t in tags]


def _family_regex(family: str, metric: str | None = None) -> str:
    """The regex of every tag below ``regimescope/<family>[/<metric>]/`` (TensorBoard matches from the start)."""
    prefix = "/".join(part for part in (ROOT, family, metric) if part is not None)
    return f"{prefix}/.*"


def _fixed_charts(summarised: bool) -> dict[str, list[str]]:
    """The charts of the contract's families; ``summarised``: per-block charts in place of the long per-layer ones."""
    charts = {"regime (score, label)": _exactly(tag("regime", "score"), tag("regime", "label"))}
    for metric, title in KERNEL_CHARTS.items():
        charts[title] = _exactly(tag("kernel", metric), tag("noise/kernel", metric))
    charts["BatchNorm statistics, mean over layers"] = _exactly(
        tag("normalization", "running_change"), tag("normalization", "eval_gap")
    )
    if summarised:
        charts.update({title: [_family_regex(BLOCK_FAMILY, metric)] for title, metric in _BLOCK_CHARTS.items()})
    else:
        charts.update({title: [_family_regex(*parts)] for title, parts in _PER_LAYER_CHARTS.items()})
    charts.update({title: [_family_regex(*parts)] for title, parts in _OTHER_CHARTS.items()})
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
    summarised = any(name.startswith(f"{ROOT}/{BLOCK_FAMILY}/") for name in names)
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
