"""The custom-scalars layout that groups regimescope's tags into TensorBoard panels."""

from __future__ import annotations

import re
from collections.abc import Iterable

from regimescope.record import TAG_ROOT, tag

CATEGORY = TAG_ROOT
"""Title of the one custom-scalars category regimescope writes."""

_KERNEL_METRICS = ("distance_from_init", "relative_change", "velocity", "target_alignment", "effective_rank")


def _exactly(*tags: str) -> list[str]:
    """Anchored regexes matching exactly ``tags`` (so a whole-model tag does not also pull in its layers)."""
    return [f"^{re.escape(t)}$" for t in tags]


def _family_regex(family: str, metric: str | None = None) -> str:
    """The regex of every tag below ``regimescope/<family>[/<metric>]/``."""
    prefix = "/".join(part for part in (TAG_ROOT, family, metric) if part is not None)
    return f"{prefix}/.*"


_FIXED_CHARTS: dict[str, list[str]] = {
    "regime (score, label)": _exactly(tag("regime", "score"), tag("regime", "label")),
    "kernel": _exactly(*(tag("kernel", metric) for metric in _KERNEL_METRICS)),
    "kernel distance from init, per layer": [_family_regex("kernel", "distance_from_init")],
    "kernel share, per layer": [_family_regex("kernel", "share")],
    "balance, per layer pair": [_family_regex("balance")],
    "balance drift, per layer pair": [_family_regex("balance_drift")],
    "weights relative change, per layer": [_family_regex("weights", "relative_change")],
    "representation CKA to init, per layer": [_family_regex("representation", "cka_to_init")],
    "representation target alignment, per layer": [_family_regex("representation", "target_alignment")],
    "activation pattern change, per layer": [_family_regex("activations", "pattern_change")],
    "cost": [_family_regex("cost")],
}


def build_layout(tags: Iterable[str]) -> dict[str, dict[str, list[str | list[str]]]]:
    """Build the custom-scalars layout for ``SummaryWriter.add_custom_scalars``.

    The layout has one category, ``"regimescope"``. Its charts are always the same for the families of the
    tag contract (design.md, section 3): the regime score and label together, the whole-model kernel
    metrics together, and one multiline chart per per-layer family whose tags are regexes (e.g.
    ``regimescope/balance/.*``), so layers that appear later still land in their chart. TensorBoard keeps
    only the first layout of a run, which is why the charts do not depend on which tags came first.
    Tags of ``tags`` under ``regimescope/`` that no such chart matches (an indicator added outside the
    contract) get one chart per ``regimescope/<family>/<metric>``; tags outside ``regimescope/`` are ignored.

    Args:
        tags: Scalar tags seen so far.

    Returns:
        ``{"regimescope": {chart title: ["Multiline", [tag regex, ...]]}}``.
    """
    charts: dict[str, list[str]] = dict(_FIXED_CHARTS)
    patterns = [re.compile(regex) for regexes in _FIXED_CHARTS.values() for regex in regexes]
    extra: dict[str, str] = {}
    for name in tags:
        parts = name.split("/")
        if parts[0] != TAG_ROOT or len(parts) < 2 or any(p.search(name) for p in patterns):
            continue
        title = "/".join(parts[1:3])
        extra[title] = "^" + re.escape("/".join(parts[:3])) + "(/.*)?$"
    for title in sorted(extra):
        charts.setdefault(title, [extra[title]])
    return {CATEGORY: {title: ["Multiline", regexes] for title, regexes in charts.items()}}
