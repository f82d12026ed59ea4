"""build_layout groups the contract's tags into custom-scalars charts."""

from __future__ import annotations

import re

from regimescope.sinks import build_layout

CONTRACT_TAGS = [
    "regimescope/regime/score",
    "regimescope/regime/label",
    "regimescope/kernel/distance_from_init",
    "regimescope/kernel/relative_change",
    "regimescope/kernel/velocity",
    "regimescope/kernel/target_alignment",
    "regimescope/kernel/effective_rank",
    "regimescope/kernel/distance_from_init/features.0",
    "regimescope/kernel/share/fc1",
    "regimescope/balance/fc1-fc2",
    "regimescope/balance_drift/fc1-fc2",
    "regimescope/weights/relative_change/fc1",
    "regimescope/representation/cka_to_init/fc1",
    "regimescope/representation/target_alignment/fc1",
    "regimescope/activations/pattern_change/relu1",
    "regimescope/cost/seconds",
]


def _charts_matching(layout: dict, tag: str) -> list[str]:
    return [
        title
        for title, (kind, regexes) in layout["regimescope"].items()
        if kind == "Multiline" and any(re.search(regex, tag) for regex in regexes)
    ]


def test_every_contract_tag_lands_in_exactly_one_chart() -> None:
    layout = build_layout(CONTRACT_TAGS)
    assert list(layout) == ["regimescope"]
    for tag in CONTRACT_TAGS:
        assert len(_charts_matching(layout, tag)) == 1, tag


def test_layout_does_not_depend_on_the_first_tags_for_contract_families() -> None:
    assert build_layout([]) == build_layout(CONTRACT_TAGS)
    layout = build_layout([])
    assert _charts_matching(layout, "regimescope/balance/new-layer-pair") == _charts_matching(
        layout, "regimescope/balance/fc1-fc2"
    )


def test_whole_model_kernel_chart_leaves_out_layers() -> None:
    layout = build_layout([])
    whole = _charts_matching(layout, "regimescope/kernel/distance_from_init")
    per_layer = _charts_matching(layout, "regimescope/kernel/distance_from_init/fc1")
    assert whole != per_layer
    assert _charts_matching(layout, "regimescope/regime/score") == _charts_matching(layout, "regimescope/regime/label")


def test_listed_regexes_of_the_design() -> None:
    regexes = {regex for _, (_, group) in build_layout([])["regimescope"].items() for regex in group}
    for family in (
        "kernel/distance_from_init",
        "kernel/share",
        "balance",
        "balance_drift",
        "weights/relative_change",
        "representation/cka_to_init",
        "representation/target_alignment",
        "activations/pattern_change",
        "cost",
    ):
        assert f"regimescope/{family}/.*" in regexes


def test_tags_outside_the_contract_get_their_own_chart() -> None:
    layout = build_layout(["regimescope/gradients/norm/fc1", "regimescope/gradients/norm", "other/loss"])
    assert len(layout["regimescope"]) == len(build_layout([])["regimescope"]) + 1
    charts = _charts_matching(layout, "regimescope/gradients/norm/fc2")
    assert charts == _charts_matching(layout, "regimescope/gradients/norm") == ["gradients/norm"]
    assert _charts_matching(layout, "other/loss") == []
