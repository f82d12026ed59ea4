"""The default measured function of a BatchNorm network: normalised by the probe's own statistics, held fixed.

Checked against float64 references: the copy's forward equals the network normalising with batch statistics on the
probe; the captured kernel equals the reference kernel of the function with those statistics held fixed; the model
itself is untouched; moving only the running statistics leaves the kernel exactly where it was; examples stay
independent (the kernel of a probe subset is the sub-block of the whole probe's kernel).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from regimescope.capture import CaptureConfig, Need, capture
from regimescope.capture.probe_statistics import with_probe_statistics
from regimescope.probe import Probe
from tests._models import build, inputs_for
from tests.reference.ntk_reference import reference_ntk


def _double_bn_net() -> nn.Module:
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 6),
        nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.3), nn.Linear(6, 3),
    ).double()
    with torch.no_grad():  # running statistics far from the probe's, as early in training
        model[1].running_mean.fill_(3.0)
        model[5].running_var.fill_(9.0)
    return model


def test_the_copy_normalises_the_probe_as_training_would_without_dropout() -> None:
    model = _double_bn_net()
    x = torch.randn(12, 3, 8, 8, dtype=torch.float64)
    measured = with_probe_statistics(model, Probe(x))
    reference = copy.deepcopy(model).eval()
    for index in (1, 5):
        reference[index].train()  # batch statistics, as in training; dropout stays off
    with torch.no_grad():
        torch.testing.assert_close(measured(x), reference(x), rtol=1e-12, atol=1e-12)
    assert not measured.training and model.training  # the copy is in eval mode; the model keeps its flags


def test_the_kernel_is_that_of_the_function_with_the_statistics_held_fixed() -> None:
    model = _double_bn_net()
    x = torch.randn(10, 3, 8, 8, dtype=torch.float64)
    probe = Probe(x)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    snapshot = capture(model, probe, {Need.KERNEL}, CaptureConfig(), step=0)
    expected = reference_ntk(with_probe_statistics(model, probe), x, per_layer=True)
    for name, kernel in expected.items():
        torch.testing.assert_close(snapshot.layer_kernels[name], kernel, rtol=1e-10, atol=1e-10)
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())  # untouched


def test_running_statistics_alone_do_not_move_the_kernel() -> None:
    model = build("cnn_bn")
    probe = Probe(inputs_for("cnn_bn", 8))
    config = CaptureConfig(dtype=torch.float64)
    before = capture(model, probe, {Need.KERNEL}, config, step=0)
    with torch.no_grad():
        model.train()
        model(3.0 * inputs_for("cnn_bn", 16, seed=5) - 2.0)  # only the running statistics move
        model.eval()
    after = capture(model, probe, {Need.KERNEL}, config, step=1)
    for name, kernel in before.layer_kernels.items():
        torch.testing.assert_close(after.layer_kernels[name], kernel, rtol=0, atol=0)


def test_examples_stay_independent() -> None:
    model = build("cnn_bn")
    x = inputs_for("cnn_bn", 8)
    config = CaptureConfig(dtype=torch.float64)
    measured = with_probe_statistics(model, Probe(x))
    whole = reference_ntk(measured, x)
    part = reference_ntk(measured, x[:3])
    torch.testing.assert_close(part, whole[:3, :3], rtol=1e-12, atol=1e-12)
    assert with_probe_statistics(nn.Linear(3, 2), Probe(torch.randn(4, 3))).__class__ is nn.Linear
    assert capture(model, Probe(x), {Need.KERNEL}, config, 0).layer_kernels  # the engine's layer rules apply
