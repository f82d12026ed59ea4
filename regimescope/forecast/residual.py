"""What the network still has to learn on the probe at initialisation: the target residual."""

from __future__ import annotations

import torch


def target_residual(outputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """The residual ``r`` the lazy (kernel) solution would have to fit on the probe, ``(n, k)`` float64.

    - Float targets with as many entries per example as the outputs (regression): ``r = y - f_0``.
    - Integer class labels ``(n,)`` for ``k > 1`` outputs (classification): ``r = onehot(y) - softmax(f_0)``, the
      negative gradient of the cross-entropy, i.e. the direction and size of the first steps in function space.

    Args:
        outputs: Initial outputs ``f_0`` on the probe, ``(n, k)``.
        targets: The probe's targets, or ``None``.

    Returns:
        ``r``, or ``None`` when there are no targets or they do not match the outputs (the forecast then has no
        task scale to judge against).
    """
    if targets is None:
        return None
    f_0 = outputs.detach().double().reshape(outputs.shape[0], -1)
    n, k = f_0.shape
    if not targets.is_floating_point():
        labels = targets.reshape(-1).long()
        if labels.numel() != n or k < 2 or int(labels.min()) < 0 or int(labels.max()) >= k:
            return None
        onehot = torch.nn.functional.one_hot(labels.cpu(), k).to(f_0)
        return onehot - torch.softmax(f_0.cpu(), dim=1)
    y = targets.detach().double().cpu().reshape(n, -1)
    if y.shape[1] != k:
        return None
    return y - f_0.cpu()
