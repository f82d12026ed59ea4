"""Test-session settings."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
"""The test models are tiny: one thread avoids hand-off costs on the 2-core CI machine."""
