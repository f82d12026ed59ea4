"""Memory budgets for the NTK engine."""

from __future__ import annotations

import os

import torch

DEFAULT_FRACTION = 0.25
"""Share of the currently free memory the engine plans to use when no ``max_memory`` is given."""

DEFAULT_CAP = 4 * 2**30
"""Upper bound of the default budget, in bytes."""


class NtkMemoryWarning(ResourceWarning):
    """The smallest chunks the engine can use still exceed ``max_memory``; it runs with them anyway."""


def free_memory(device: torch.device) -> int:
    """Bytes currently free on ``device`` (``MemAvailable`` on CPU, the CUDA allocator's view on GPU)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def default_budget(device: torch.device) -> int:
    """``min(DEFAULT_FRACTION * free memory, DEFAULT_CAP)`` bytes."""
    return int(min(DEFAULT_FRACTION * free_memory(device), DEFAULT_CAP))
