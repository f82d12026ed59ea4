"""The two empirical-NTK methods of the PyTorch tutorial "Neural Tangent Kernels", re-implemented from its text.

* Jacobian contraction: ``vmap(jacrev)`` per-sample Jacobians of all parameters for ``x1`` and ``x2``, then one
  ``einsum`` per parameter tensor, summed.
* NTK-vector products: for every pair of examples, a ``vjp`` of ``f(x1_i)`` with each unit output vector
  followed by a ``jvp`` of ``f(x2_j)`` along the result, all under ``vmap(vmap(...))``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap


def _single(model: nn.Module):
    def fnet_single(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, params, (x.unsqueeze(0),)).squeeze(0)

    return fnet_single


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach() for name, p in model.named_parameters()}


def jacobian_contraction(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor, compute: str) -> torch.Tensor:
    """``compute`` in ``{"full", "trace"}``: ``(N, M, K, K)`` or ``(N, M)``."""
    fnet_single, params = _single(model), _params(model)
    jac1 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x1).values()]
    jac2 = [j.flatten(2) for j in vmap(jacrev(fnet_single), (None, 0))(params, x2).values()]
    expression = "Naf,Mbf->NMab" if compute == "full" else "Naf,Maf->NM"
    return torch.stack([torch.einsum(expression, j1, j2) for j1, j2 in zip(jac1, jac2)]).sum(0)


def ntk_vector_products(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor, compute: str) -> torch.Tensor:
    """``compute`` in ``{"full", "trace"}``: ``(N, M, K, K)`` or ``(N, M)``."""
    func, params = _single(model), _params(model)

    def get_ntk(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        output, vjp_fn = vjp(lambda p: func(p, a), params)

        def get_ntk_slice(vec: torch.Tensor) -> torch.Tensor:
            vjps = vjp_fn(vec)
            _, jvps = jvp(lambda p: func(p, b), (params,), vjps)
            return jvps

        basis = torch.eye(output.numel(), dtype=output.dtype, device=output.device).view(output.numel(), -1)
        return vmap(get_ntk_slice)(basis)

    result = vmap(vmap(get_ntk, (None, 0)), (0, None))(x1, x2)
    return result if compute == "full" else torch.einsum("NMKK->NM", result)


def ntk_vector_products_bytes(model: nn.Module, n1: int, n2: int, k: int, activations: int) -> int:
    """Rough float32 memory NTK-vector products ask for: every (pair, output) holds a parameter-sized cotangent
    and the activations of one example, ``n1 n2 k (P + A)`` scalars, twice."""
    params = sum(p.numel() for p in model.parameters())
    return 2 * 4 * n1 * n2 * k * (params + activations)
