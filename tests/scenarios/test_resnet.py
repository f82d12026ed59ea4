"""ResNet-18 written out: torchvision's module tree, parameter count and initialisation."""

from __future__ import annotations

import torch
from torch import nn

from regimescope.scenarios.resnet import ResNet18


def test_resnet18_has_torchvisions_layout_and_parameter_count() -> None:
    model = ResNet18()
    assert sum(p.numel() for p in model.parameters()) == 11_181_642  # torchvision's resnet18(num_classes=10)
    names = dict(model.named_parameters())
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.bias", "layer2.0.downsample.0.weight"} <= set(names)
    assert "layer1.0.downsample.0.weight" not in names  # the first stage keeps its shape: identity shortcut
    assert names["conv1.weight"].shape == (64, 3, 7, 7) and isinstance(model.maxpool, nn.MaxPool2d)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_torchvision_initialisation_is_kaiming_fan_out_and_unit_batchnorm() -> None:
    torch.manual_seed(0)
    model = ResNet18()
    weight = model.layer3[0].conv2.weight
    fan_out = weight.shape[0] * weight[0, 0].numel()
    assert abs(float(weight.std()) / (2 / fan_out) ** 0.5 - 1) < 0.02  # 589,824 draws: std within 2 %
    assert torch.equal(model.layer3[0].bn1.weight, torch.ones(256)) and not model.layer3[0].bn1.bias.any()


def test_small_inputs_keep_the_resolution_and_the_default_initialisation() -> None:
    torch.manual_seed(0)
    small = ResNet18(classes=3, width=2, small_inputs=True, torchvision_init=False)
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 2, 3, 1, 1, bias=False)  # the stem, first module built: the same draws
    assert torch.equal(small.conv1.weight, conv.weight) and isinstance(small.maxpool, nn.Identity)
    assert small(torch.randn(4, 3, 8, 8)).shape == (4, 3)
