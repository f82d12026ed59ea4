"""Restricting the kernel to some layers (``layers=``): the kernel of those parameters alone, additive over layers."""

from __future__ import annotations

import pytest
import torch

from regimescope import empirical_ntk
from regimescope.ntk import layer_names, plan_ntk
from tests._models import build, inputs_for
from tests.reference.ntk_reference import assert_kernels_close, reference_ntk

MODELS = ("mlp", "cnn_bn", "transformer_block", "tied_lm")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kind", ["trace", "full"])
def test_layer_subsets_sum_to_the_whole_kernel(name: str, kind: str) -> None:
    model, x = build(name), inputs_for(name, 4, seed=1)
    names = layer_names(model)
    first, second = names[::2], names[1::2]
    whole = reference_ntk(model, x, kind=kind, per_layer=True)
    parts = [empirical_ntk(model, x, kind=kind, per_layer=True, dtype=torch.float64, layers=share)
             for share in (first, second)]
    assert list(parts[0]) == first and list(parts[1]) == second
    assert_kernels_close({**parts[0], **parts[1]}, whole, 1e-10)
    summed = sum(empirical_ntk(model, x, kind=kind, dtype=torch.float64, layers=share) for share in (first, second))
    assert_kernels_close(summed, sum(whole.values()), 1e-10)


def test_a_tied_parameter_is_counted_in_its_owner_layer_only() -> None:
    model, x = build("tied_lm"), inputs_for("tied_lm", 3, seed=1)
    owner = layer_names(model)[0]
    alone = empirical_ntk(model, x, dtype=torch.float64, layers=[owner])
    assert_kernels_close(alone, reference_ntk(model, x, per_layer=True)[owner], 1e-10)


def test_plan_covers_only_the_chosen_layers() -> None:
    model, x = build("mlp"), inputs_for("mlp", 4, seed=1)
    chosen = layer_names(model)[-1:]
    assert [b.name for b in plan_ntk(model, x, layers=chosen).blocks] == chosen


@pytest.mark.parametrize(("layers", "error", "message"), [
    (["nope"], ValueError, "names no parameter block: \\['nope'\\]"),
    ([], ValueError, "is empty"),
    ("0", TypeError, "not a string"),
])
def test_bad_layers_are_refused_with_the_known_names(layers: object, error: type, message: str) -> None:
    model, x = build("mlp"), inputs_for("mlp", 2, seed=1)
    with pytest.raises(error, match=message):
        empirical_ntk(model, x, layers=layers)
