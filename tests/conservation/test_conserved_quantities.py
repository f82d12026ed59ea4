"""The public ``conserved_quantities`` and building pairs by hand with ``layer_pair``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regimescope.conservation import conserved_quantities, layer_pair
from tests.conservation._nets import Branchy, deep_mlp, two_layer


def test_one_entry_per_pair_with_the_plain_form_by_default() -> None:
    model = deep_mlp()
    result = conserved_quantities(model)
    assert list(result) == ["0-2", "2-4", "4-6"]
    first = result["0-2"]
    expected = model[2].weight.square().sum(0) - model[0].weight.square().sum(1) - model[0].bias.square()
    torch.testing.assert_close(first.delta, expected.detach(), rtol=0, atol=1e-14)
    torch.testing.assert_close(first.rho, first.delta / (2 * model[2].weight.square().sum(0).detach() - first.delta))
    assert first.conserved and first.reason == "" and not first.matrix_conserved
    assert first.matrix.shape == (7, 7)


def test_equal_rates_in_any_form_give_the_plain_form() -> None:
    model = two_layer()
    plain = conserved_quantities(model)["0-2"].delta
    same = {name: 0.05 for name, _ in model.named_parameters()}
    for lrs in (0.05, same, torch.optim.SGD(model.parameters(), lr=0.05)):
        assert torch.equal(conserved_quantities(model, lrs)["0-2"].delta, plain)


def test_optimizer_with_per_layer_rates_weights_delta() -> None:
    model = two_layer()
    groups = [{"params": model[0].parameters(), "lr": 0.01}, {"params": model[2].parameters()}]
    optimizer = torch.optim.SGD(groups, lr=0.1)
    delta = conserved_quantities(model, optimizer)["0-2"].delta
    w, b, a = model[0].weight, model[0].bias, model[2].weight
    expected = a.square().sum(0) / 0.1 - (w.square().sum(1) + b.square()) / 0.01
    torch.testing.assert_close(delta, expected.detach(), rtol=1e-14, atol=0)


def test_parameter_outside_the_optimizer_is_an_error_with_the_fix() -> None:
    model = two_layer()
    optimizer = torch.optim.SGD([model[0].weight, model[2].weight], lr=0.1)
    with pytest.raises(ValueError, match=r"No learning rate for \['0.bias'\].*param group of the optimizer"):
        conserved_quantities(model, optimizer)


def test_frozen_pair_is_reported_in_plain_form_and_not_conserved() -> None:
    model = deep_mlp()
    model[0].requires_grad_(False)
    groups = [{"params": model[2].parameters(), "lr": 0.01}, {"params": model[4:].parameters()}]
    optimizer = torch.optim.SGD(groups, lr=0.1)
    result = conserved_quantities(model, optimizer)
    assert not result["0-2"].conserved and "requires_grad=False" in result["0-2"].reason
    plain = model[2].weight.square().sum(0) - model[0].weight.square().sum(1) - model[0].bias.square()
    torch.testing.assert_close(result["0-2"].delta, plain.detach(), rtol=0, atol=1e-14)
    assert result["2-4"].conserved


def test_matrices_can_be_skipped() -> None:
    assert conserved_quantities(two_layer(), matrices=False)["0-2"].matrix is None


def test_untraceable_model_needs_explicit_pairs() -> None:
    model = Branchy()
    with pytest.raises(ValueError, match=r"Could not trace Branchy"):
        conserved_quantities(model)
    result = conserved_quantities(model, pairs=[layer_pair(model, "a", "b")])
    assert list(result) == ["a-b"] and result["a-b"].delta.shape == (4,)


def test_layer_pair_infers_layout_from_shapes() -> None:
    model = nn.Sequential(nn.Conv2d(2, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 36, 2))
    pair = layer_pair(model, "0", "3")
    assert (pair.units, pair.positions, pair.layout, pair.out_kind) == (5, 36, "block", "linear")


@pytest.mark.parametrize(
    ("in_name", "out_name", "kwargs", "message"),
    [
        ("fc", "2", {}, r"The incoming layer 'fc' is not a submodule of the model; expected one of \['0', '2', '3'\]"),
        ("1", "2", {}, r"The incoming layer '1' is a ReLU; expected one of \['Linear', 'Conv1d'"),
        ("0", "3", {}, r"3 reads 5 features, not a multiple of the 6 units of 0"),
        ("0", "2", {"conserved": False}, r"marked not conserved but received no reason"),
    ],
)
def test_layer_pair_errors_say_what_to_fix(in_name: str, out_name: str, kwargs: dict, message: str) -> None:
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2), nn.Linear(5, 1))
    with pytest.raises(ValueError, match=message):
        layer_pair(model, in_name, out_name, **kwargs)
