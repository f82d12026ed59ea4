"""Keeping the probe pass across kernels of one model and probe, so that repeated kernels run it once.

The probe pass (:mod:`regimescope.ntk.planning.profile`) measures per-example sizes and checks every layer rule on
the model. A monitor computes the kernel of the same model on the same probe at every measurement, and only the
weights' values change between them: sizes and the outcome of a rule check depend on the model's structure, not on
its values. A :class:`ProbePassCache` keeps the profiles of one structure and hands them back while the structure
is the same: the selected blocks (names, parameter shapes and dtypes), every module's name, type and forward
hooks (a hook added later may change what a layer computes), each input set's tensor shapes and dtypes, the
compute dtype and the options that shape the outputs. On ResNet-18 the probe pass took 0.11 s of a 1.07 s
measurement, about a tenth.

A profile is kept only when its checks were decisive (:attr:`SetProfile.decisive`): behind a zero-initialised
head every gradient is zero at step 0, so a rule check passes whatever the rule does, and the pass is repeated
until it compares non-zero gradients.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import nn

from regimescope import batch
from regimescope.ntk.model.blocks import ParamBlock
from regimescope.ntk.planning.profile import SetProfile


def structure_key(
    model: nn.Module,
    blocks: Sequence[ParamBlock],
    sets: Sequence[batch.Inputs],
    dtype: torch.dtype,
    options: Hashable,
) -> tuple[Any, ...]:
    """What a probe pass depends on besides the weights' values.

    Args:
        model: The model.
        blocks: The selected parameter blocks.
        sets: The prepared input sets.
        dtype: The compute dtype.
        options: The options that shape the outputs and the rules (mode, implementation, output map, ...).
    """
    params = dict(model.named_parameters())
    return (
        tuple((b.name, tuple((n, tuple(params[n].shape), params[n].dtype) for n in b.param_names)) for b in blocks),
        tuple(
            (name, type(module), tuple(module._forward_pre_hooks), tuple(module._forward_hooks))
            for name, module in model.named_modules()
        ),
        tuple(tuple((tuple(t.shape), t.dtype) for t in batch.tensor_leaves(x)) for x in sets),
        dtype,
        options,
    )


class ProbePassCache:
    """The probe-pass profiles of one model structure, reused while the structure stays the same.

    Pass one to :func:`~regimescope.ntk.engine.empirical_ntk` (``probe_cache=``) at every call on the same model and
    inputs; a different structure replaces what it holds.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._profiles: list[SetProfile] | None = None
        self.hits = 0

    def get(self, key: tuple[Any, ...]) -> list[SetProfile] | None:
        """The profiles kept for ``key``, or ``None``."""
        if self._profiles is None or key != self._key:
            return None
        self.hits += 1
        return self._profiles

    def put(self, key: tuple[Any, ...], profiles: list[SetProfile]) -> None:
        """Keep ``profiles`` for ``key`` when every check was decisive; otherwise forget what is kept."""
        decisive = all(p.decisive for p in profiles)
        self._key, self._profiles = (key, profiles) if decisive else (None, None)
