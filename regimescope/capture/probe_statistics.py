"""The measured function of a BatchNorm network: normalised with the probe's own statistics, held fixed.

A BatchNorm layer in training normalises with the statistics of the batch it sees; in eval mode with running
statistics, which start at mean 0 and variance 1, unrelated to the activations, and lag behind the weights. A kernel
measured in eval mode therefore moves when only the running statistics move (on a ResNet-18 the initial weights with
the running statistics of step 8 look "rich"), and a kernel measured with batch statistics differentiated through
(``mode="batch_stats"``, the training Jacobian of the whole batch) couples every example to every other, so its
cost is one backward pass of the whole probe per example and output: minutes per measurement on a ResNet-18.

``mode="probe_stats"`` (the monitor's default) measures the network with each BatchNorm layer normalising by the
probe's own per-channel mean and (biased) variance at that layer, computed at the current weights and then held
fixed: the function of one example is ``f(x; theta, m(theta), v(theta))`` with ``m, v`` the probe's statistics, and
the kernel differentiates in ``theta`` with ``m, v`` constant. So:

- the kernel never depends on the running statistics (they are reported apart, under ``regimescope/normalization``);
- it changes when the weights move, through the weights and through the statistics they induce on the probe;
- examples stay independent, so the engine's layer rules apply and a measurement costs what an eval-mode one does.

It omits the derivative through the statistics (the centring that the whole-batch Jacobian adds), so its values
differ from the training Jacobian's; like with like, it tells the same regime (``docs/architectures.md``).
"""

from __future__ import annotations

import torch
from torch import nn

from regimescope import batch
from regimescope.guards import no_autocast, preserved_rng, shadow_copy
from regimescope.probe import Probe


def _with_running_statistics(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def with_probe_statistics(model: nn.Module, probe: Probe) -> nn.Module:
    """``model`` in eval mode with every BatchNorm that tracks running statistics holding the probe's instead.

    The copy shares ``model``'s parameters (no memory for weights) and has its own buffers; ``model`` itself is not
    run and not changed. One forward pass of the probe, each BatchNorm in train mode with ``momentum = 1``, sets the
    copy's running mean to the probe's batch mean and its running variance to the probe's batch variance (corrected
    from PyTorch's unbiased update to the biased variance the normalisation uses).

    Returns:
        The copy in eval mode, or ``model`` itself when it has no such BatchNorm.
    """
    if not _with_running_statistics(model):
        return model
    copy = shadow_copy(model)
    layers = _with_running_statistics(copy)
    copy.eval()
    counts: dict[int, int] = {}

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        counts[id(module)] = inputs[0].numel() // inputs[0].shape[1]

    handles = [layer.register_forward_pre_hook(count) for layer in layers]
    try:
        for layer in layers:
            layer.train()
            layer.momentum = 1.0
        with torch.no_grad(), preserved_rng([probe.device]), no_autocast(probe.device.type):
            batch.call_model(copy, probe.inputs)
    finally:
        for handle in handles:
            handle.remove()
    for layer in layers:
        n = counts.get(id(layer), 0)
        if n > 1:
            layer.running_var.mul_((n - 1) / n)
    return copy.eval()
