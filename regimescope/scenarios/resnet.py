"""ResNet-18's layout written out: the BatchNorm network of the real-architecture scenarios and the benchmarks.

torchvision cannot be installed beside the pinned CPU build of torch, so its ``resnet18`` is rebuilt here with the
same module tree and names (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4.1.downsample.0``, ``fc``), which is
what a user's ResNet-18 looks like to the monitor: 4 stages of 2 basic blocks, BatchNorm after every convolution.
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """torchvision's basic block: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + downsample(x))``, where ``downsample`` is
    a strided 1x1 convolution and BatchNorm when the shape changes, and the identity otherwise."""

    def __init__(self, channels_in: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or channels_in != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(channels_in, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, of ``channels`` channels."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18: a stem, 4 stages of 2 :class:`BasicBlock` of ``width, 2 width, 4 width, 8 width`` channels (the
    later stages halve the resolution), global average pooling and a linear head ``fc``.

    ``ResNet18()`` is torchvision's ``resnet18(num_classes=10)``: 11,181,642 parameters, a 7x7 stride-2 stem with a
    max-pool, and torchvision's initialisation (Kaiming-normal convolutions, ``fan_out``; BatchNorm weight 1 and
    bias 0).

    Args:
        classes: Outputs of the head.
        width: Channels of the first stage (64 in torchvision).
        small_inputs: A 3x3 stride-1 stem without max-pool, for small images (CIFAR's layout).
        torchvision_init: torchvision's initialisation; ``False`` keeps PyTorch's default one of each layer.
    """

    def __init__(
        self, classes: int = 10, width: int = 64, small_inputs: bool = False, torchvision_init: bool = True
    ) -> None:
        super().__init__()
        if small_inputs:
            self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_inputs else nn.MaxPool2d(3, 2, 1)
        channels_in = width
        for stage in range(4):
            channels = width * 2**stage
            blocks = [BasicBlock(channels_in, channels, 1 if stage == 0 else 2), BasicBlock(channels, channels, 1)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            channels_in = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels_in, classes)
        if torchvision_init:
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(module, nn.BatchNorm2d):
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, classes)`` of images ``(n, 3, H, W)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
