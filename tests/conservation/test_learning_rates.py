"""Reading learning rates from numbers, dicts and optimizers, and picking a pair's rates."""

from __future__ import annotations

import pytest
import torch

from regimescope.conservation import (
    PairRates,
    find_layer_pairs,
    learning_rates_from_optimizer,
    pair_rates,
    resolve_learning_rates,
)
from tests.conservation._nets import two_layer


def test_optimizer_groups_give_per_parameter_rates() -> None:
    model = two_layer()
    first = {"params": [model[0].weight], "lr": torch.tensor(0.02, dtype=torch.float64)}
    optimizer = torch.optim.SGD([first, {"params": [model[2].weight, model[2].bias]}], lr=0.1)
    assert learning_rates_from_optimizer(model, optimizer) == {"0.weight": 0.02, "2.weight": 0.1, "2.bias": 0.1}


@pytest.mark.parametrize("lrs", [None, 0.1, 3])
def test_none_or_a_number_means_equal_rates(lrs: object) -> None:
    assert resolve_learning_rates(two_layer(), lrs) is None


def test_dict_is_validated_and_kept() -> None:
    rates = {"0.weight": 0.1, "0.bias": 0.2, "2.weight": 0.3}
    assert resolve_learning_rates(two_layer(), rates) == rates


@pytest.mark.parametrize(
    ("lrs", "error", "message"),
    [
        (-0.1, ValueError, r"learning rate of 'every parameter' in lrs is -0.1; expected a finite number > 0"),
        ({"0.weight": 0.0}, ValueError, r"learning rate of '0.weight' in lrs is 0.0"),
        ({"fc.weight": 0.1}, ValueError, r"lrs names \['fc.weight'\], which are not parameters of the model"),
        ("0.1", TypeError, r"lrs must be None, a number, a dict parameter name -> lr or a torch optimizer"),
        (True, TypeError, r"received bool"),
    ],
)
def test_bad_rates_are_rejected_with_the_fix(lrs: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_learning_rates(two_layer(), lrs)


def test_pair_rates_plain_when_equal_or_absent_and_weighted_when_they_differ() -> None:
    pair = find_layer_pairs(two_layer())[0]
    assert pair_rates(pair, None) is None
    assert pair_rates(pair, {}) is None
    assert pair_rates(pair, {"0.weight": 0.1, "0.bias": 0.1, "2.weight": 0.1, "2.bias": 9.0}) is None
    rates = pair_rates(pair, {"0.weight": 0.1, "0.bias": 0.2, "2.weight": 0.3})
    assert rates == PairRates(in_weight=0.1, in_bias=0.2, out_weight=0.3)


def test_pair_rates_missing_parameter_is_named() -> None:
    pair = find_layer_pairs(two_layer())[0]
    with pytest.raises(ValueError, match=r"No learning rate for \['0.bias'\] \(pair 0-2\)"):
        pair_rates(pair, {"0.weight": 0.1, "2.weight": 0.3})
