"""The probe pass kept across kernels: the same kernels as without it, run once per structure, never kept when
its rule checks saw only zero gradients."""

from __future__ import annotations

import torch
from torch import nn

from regimescope.ntk import ProbePassCache, empirical_ntk
from tests._models import functional_reuse_net


def _mlp(width: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, 3)).double()


def _nudge(model: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def _same_kernels(model: nn.Module, x: torch.Tensor, cache: ProbePassCache, **options: object) -> None:
    cached = empirical_ntk(model, x, per_layer=True, probe_cache=cache, **options)
    fresh = empirical_ntk(model, x, per_layer=True, **options)
    assert cached.keys() == fresh.keys()
    for name in fresh:
        torch.testing.assert_close(cached[name], fresh[name], rtol=1e-12, atol=1e-14)


def test_a_kept_probe_pass_gives_the_kernels_of_a_fresh_one_as_the_weights_move() -> None:
    model, x, cache = _mlp(), torch.randn(6, 5, dtype=torch.float64), ProbePassCache()
    for seed in range(3):
        _same_kernels(model, x, cache)
        _nudge(model, seed)
    assert cache.hits == 2
    _same_kernels(model, x, cache, output_projection=2)  # other outputs: another structure, a fresh pass
    assert cache.hits == 2
    _same_kernels(model, x[:4], cache, output_projection=2)  # other examples: a fresh pass
    assert cache.hits == 2


def test_another_structure_runs_its_own_probe_pass() -> None:
    x, cache = torch.randn(6, 5, dtype=torch.float64), ProbePassCache()
    _same_kernels(_mlp(16), x, cache)
    _same_kernels(_mlp(8), x, cache)
    assert cache.hits == 0
    model = _mlp(8)
    model[0].register_forward_hook(lambda module, args, output: output * 2)  # a hook changes what the layer computes
    _same_kernels(model, x, cache)
    assert cache.hits == 0


def test_a_failed_rule_check_is_kept_and_the_block_stays_exact() -> None:
    torch.manual_seed(0)  # the head's weight is also used through F.linear, outside the head's forward
    model, x, cache = functional_reuse_net().double(), torch.randn(5, 3, dtype=torch.float64), ProbePassCache()
    for seed in range(3):
        _same_kernels(model, x, cache)
        _nudge(model, seed)
    assert cache.hits == 2


def test_checks_that_saw_only_zero_gradients_are_not_kept() -> None:
    model, x, cache = _mlp(), torch.randn(6, 5, dtype=torch.float64), ProbePassCache()
    with torch.no_grad():
        model[2].weight.zero_()  # a zero head: no gradient reaches the first layer at these weights
    _same_kernels(model, x, cache)
    _same_kernels(model, x, cache)
    assert cache.hits == 0
    _nudge(model, 0)
    _same_kernels(model, x, cache)
    _same_kernels(model, x, cache)
    assert cache.hits == 1
