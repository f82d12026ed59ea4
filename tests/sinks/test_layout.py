"""build_layout groups the contract's tags into custom-scalars charts."""

from __future__ import annotations

import re

import pytest
import torch

import regimescope as rs
from regimescope.sinks import MemorySink, build_layout
from regimescope.sinks.layout import KERNEL_CHARTS
from tests._dashboard_runs import narrow_resnet, one_thread

CONTRACT_TAGS = [
    "regimescope/regime/score",
    "regimescope/regime/label",
    "regimescope/kernel/distance_from_init",
    "regimescope/kernel/relative_change",
    "regimescope/kernel/velocity",
    "regimescope/kernel/target_alignment",
    "regimescope/kernel/effective_rank",
    "regimescope/kernel/norm_ratio",
    "regimescope/noise/kernel/distance_from_init",
    "regimescope/noise/kernel/distance_from_init/features.0",
    "regimescope/noise/balance_drift/fc1-fc2",
    "regimescope/balance_explained/fc1-fc2",
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


def test_each_kernel_metric_has_its_own_chart_with_its_noise() -> None:
    """S (about 1e-6 in a lazy run) and the relative change (up to 25) never share an axis."""
    layout = build_layout([])
    charts = [_charts_matching(layout, f"regimescope/kernel/{metric}") for metric in KERNEL_CHARTS]
    assert all(len(found) == 1 for found in charts)
    assert len({found[0] for found in charts}) == len(KERNEL_CHARTS)
    for metric, title in KERNEL_CHARTS.items():
        assert _charts_matching(layout, f"regimescope/noise/kernel/{metric}") == [title]
        regexes = layout["regimescope"][title][1]
        assert sum(bool(re.search(regex, name)) for name in CONTRACT_TAGS for regex in regexes) <= 2


@pytest.fixture(scope="module")
def resnet_tags() -> tuple[list[str], list[str]]:
    """The scalar tags of a ResNet-18-like run: those of its first record (what the layout is built from), and all."""
    model = narrow_resnet()
    sink = MemorySink()
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with one_thread(), rs.RegimeMonitor(model, rs.Probe(x, torch.zeros(8, 3)), sinks=[sink]) as monitor:
        model.conv1.weight.data.mul_(1.5)  # a change to measure (no optimizer here)
        monitor.measure(1)
    return list(sink.records[0].scalars), sorted({name for r in sink.records for name in r.scalars})


def test_a_resnet_layout_shows_blocks_and_keeps_every_chart_readable(resnet_tags: tuple[list[str], list[str]]) -> None:
    first, every = resnet_tags
    assert len([name for name in every if name.startswith("regimescope/weights/relative_change/")]) == 41
    layout = build_layout(first)
    for title, (_, regexes) in layout["regimescope"].items():
        lines = [name for name in every if any(re.search(regex, name) for regex in regexes)]
        assert len(lines) <= 16, (title, len(lines))
    for block in ("conv1", "bn1", "layer1.0", "layer2.0", "layer4.1", "fc"):
        for metric in ("kernel_distance_from_init", "kernel_share", "weights_relative_change"):
            assert len(_charts_matching(layout, f"regimescope/blocks/{metric}/{block}")) == 1
    # The per-layer tags are still written; the layout leaves the long families to the other views (the BatchNorm
    # statistics keep their means over layers).
    assert _charts_matching(layout, "regimescope/weights/relative_change/layer2.0.downsample.0") == []
    assert _charts_matching(layout, "regimescope/kernel/share/fc") == []
    assert len(_charts_matching(layout, "regimescope/normalization/eval_gap")) == 1
    for name in every:
        summarised = re.match(r"regimescope/(kernel/(distance_from_init|share)|weights/relative_change|"
                              r"noise/kernel/distance_from_init|normalization/(running_change|eval_gap))/", name)
        assert len(_charts_matching(layout, name)) == (0 if summarised else 1), name
