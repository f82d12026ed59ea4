"""Context managers that make a measurement leave no trace on the model or the random state."""

from __future__ import annotations

import contextlib
import copy
import functools
import random
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.weak import WeakIdKeyDictionary

MODES = ("probe_stats", "batch_stats", "eval", "train")
"""How the model behaves while it is measured (see :func:`set_mode`)."""
ENGINE_MODES = ("eval", "train", "batch_stats")
"""The modes the NTK engine takes: ``"probe_stats"`` is ``"eval"`` on a copy the capture prepares
(:func:`regimescope.capture.probe_statistics.with_probe_statistics`)."""
T = TypeVar("T")


def check_mode(mode: str) -> None:
    """Raise ``ValueError`` (naming the valid values) unless ``mode`` is one of :data:`MODES`."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {', '.join(map(repr, MODES))}; received {mode!r}.")


def set_mode(model: nn.Module, mode: str) -> None:
    """Switch the module flags of ``model`` for a measurement in ``mode``.

    * ``"probe_stats"``: every module in eval mode, as ``"eval"``; the capture runs it on a copy of the model whose
      BatchNorm layers hold the probe's own batch statistics as running statistics, so examples stay independent.
    * ``"eval"``: every module in eval mode (BatchNorm normalises with its running statistics, dropout is off).
    * ``"train"``: every module in train mode (batch statistics, dropout on).
    * ``"batch_stats"``: eval mode, except the normalisation layers with running statistics (BatchNorm,
      InstanceNorm), which normalise with the statistics of the batch they see, as in training. Their running
      statistics updates must then land on copies of the buffers (``ModelCall`` holds such copies).

    Raises:
        ValueError: For another ``mode``.
    """
    check_mode(mode)
    model.train(mode == "train")
    if mode == "batch_stats":
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                module.train()


def examples_interact(model: nn.Module) -> bool:
    """Whether, with the current flags, a layer of ``model`` mixes the examples of a batch (a BatchNorm that
    normalises with batch statistics: in train mode, or without running statistics)."""
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or m.running_mean is None)
        for m in model.modules()
    )


@contextlib.contextmanager
def preserved_modes(
    model: torch.nn.Module, train: bool | None = None, *, mode: str | None = None
) -> Iterator[None]:
    """Optionally switch every module to train/eval mode, and restore each module's own flag afterwards.

    Args:
        model: The module tree.
        train: ``True``/``False`` to switch during the block; ``None`` to leave the flags as they are.
        mode: A measurement mode of :func:`set_mode` (takes precedence over ``train``).
    """
    flags = [(module, module.training) for module in model.modules()]
    try:
        if mode is not None:
            set_mode(model, mode)
        elif train is not None:
            model.train(train)
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _cuda_devices(devices: list[torch.device]) -> list[int]:
    return sorted({d.index if d.index is not None else torch.cuda.current_device() for d in devices if d.type == "cuda"})


@contextlib.contextmanager
def preserved_rng(devices: list[torch.device] | None = None, seed: int | None = None) -> Iterator[None]:
    """Save the torch (CPU and given CUDA devices), numpy and ``random`` states; restore them afterwards.

    Args:
        devices: Devices whose generators are saved too (CUDA ones; CPU is always saved).
        seed: When given, seed torch with it inside the block, so random layers draw the same numbers
            in every pass of one measurement.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=_cuda_devices(devices or []), enabled=True):
        try:
            if seed is not None:
                torch.manual_seed(seed)
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def no_autocast(device_type: str) -> Iterator[None]:
    """Disable autocast for ``device_type`` so kernels are computed in the requested dtype."""
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def _held_tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    """The tensors ``module`` holds as plain attributes, directly or in a list (an RNN caches its weights in
    ``_flat_weights``)."""
    for value in vars(module).values():
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, torch.Tensor):
                yield item


def shadow_copy(model: torch.nn.Module, *, share_parameters: bool = True) -> torch.nn.Module:
    """A copy of ``model`` whose forward (or ``torch.fx`` trace) cannot change ``model``.

    Buffers (BatchNorm statistics, ``spectral_norm``'s power-iteration vectors, a running-mean normaliser's mean),
    submodules and plain attributes are copied, so a forward in train mode updates the copy's state only. Parameters
    are shared by default (no memory for weights; ``fx`` records in-place ops on them instead of running them), except
    those a forward writes in place (:func:`refusing_parameter_writes` found them), which are copied;
    ``share_parameters=False`` copies them all, for work that overwrites the weights. Tensors computed from
    parameters and kept as attributes (what the legacy ``nn.utils.weight_norm``/``spectral_norm`` hooks store as
    ``weight``, a parametrized RNN weight in ``_flat_weights``), which ``copy.deepcopy`` refuses, are carried over
    detached. Hooks are copied with their modules (the legacy norms are hooks); a hook closing over outside objects
    still reaches them.

    Args:
        model: The user's module (not changed; its training flags are kept on the copy).
        share_parameters: Whether the copy shares ``model``'s ``nn.Parameter`` objects (and hence their ``.grad``).

    Returns:
        The copy.
    """
    memo: dict[int, Any] = {}
    for module in model.modules():
        for value in _held_tensors(module):
            if not isinstance(value, torch.nn.Parameter) and not value.is_leaf:
                detached = value.detach()
                memo[id(value)] = detached if share_parameters else detached.clone()
        if share_parameters:
            for parameter in module._parameters.values():
                if parameter is not None and not written_in_place(parameter):
                    memo[id(parameter)] = parameter
    return copy.deepcopy(model, memo)


_WRITTEN: WeakIdKeyDictionary = WeakIdKeyDictionary()
"""The parameters a forward of their model writes in place, found by :func:`refusing_parameter_writes` (weakly
held: a parameter leaves when its model is gone)."""


_SCREENED: WeakIdKeyDictionary = WeakIdKeyDictionary()
"""The models whose forward :func:`refusing_parameter_writes` has run to the end without a write into a parameter
(after taking any it found on copies): later runs skip the check."""


def written_in_place(parameter: torch.Tensor) -> bool:
    """Whether a forward of ``parameter``'s model was found writing into it in place."""
    return parameter in _WRITTEN


def measured_parameter(parameter: torch.Tensor) -> torch.Tensor:
    """``parameter`` detached for a run of its model through ``functional_call``: an alias (no memory), or a copy
    when a forward writes into it in place, so that the write lands on the copy."""
    detached = parameter.detach()
    return detached.clone() if written_in_place(parameter) else detached


class ParameterWriteError(ValueError):
    """A forward writes into a parameter through a reference no measurement can replace by a copy."""


class _RefusedWrite(BaseException):
    """Raised inside a guarded forward at a write into a parameter, before the write lands (a ``BaseException``, so
    that a forward catching ``Exception`` does not swallow it)."""


def _storage(tensor: torch.Tensor) -> int:
    """The address of ``tensor``'s storage (0 when it has none: empty, meta or wrapped tensors)."""
    try:
        return tensor.untyped_storage().data_ptr() if tensor.numel() else 0
    except (RuntimeError, NotImplementedError, TypeError):
        return 0


@functools.cache
def _write_slots(func: Any) -> tuple[tuple[int, str], ...]:
    """``(position, name)`` of the arguments the ATen operator ``func`` writes into (``Tensor(a!)`` in its schema:
    ``self`` of an in-place op, ``out=``); none for a higher-order operator (``flex_attention``, ``cond``: functional,
    no schema). Read once per operator: a probe pass dispatches thousands of operator calls, of a few dozen operators."""
    schema = getattr(func, "_schema", None)
    return tuple(
        (index, argument.name)
        for index, argument in enumerate(schema.arguments if schema is not None else ())
        if argument.alias_info is not None and argument.alias_info.is_write
    )


def _written_arguments(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[torch.Tensor]:
    """The tensors the ATen operator ``func`` writes into (see :func:`_write_slots`)."""
    for index, name in _write_slots(func):
        value = args[index] if index < len(args) else kwargs.get(name)
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, torch.Tensor):
                yield item


class _WriteRefusal(TorchDispatchMode):
    """Stops, before it lands, the first operator that writes into the storage of one of ``model``'s parameters,
    and keeps them (``found``: name and parameter of every parameter on that storage). Higher-order operators
    (``flex_attention``, ``cond``) and regions compiled by ``torch.compile`` run as they are, unchecked: their
    bodies are functional, and ``torch.compile`` refuses to compile under a mode that does not ignore them."""

    supports_higher_order_operators = True

    @classmethod
    def ignore_compile_internals(cls) -> bool:
        """Let ``torch.compile`` compile (and run its result) without this mode."""
        return True

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.storages: dict[int, list[tuple[str, nn.Parameter]]] = {}
        for name, parameter in model.named_parameters():
            key = _storage(parameter)
            if key:
                self.storages.setdefault(key, []).append((name, parameter))
        self.found: list[tuple[str, nn.Parameter]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        for tensor in _written_arguments(func, args, kwargs):
            hit = self.storages.get(_storage(tensor))
            if hit:
                self.found = hit
                raise _RefusedWrite(f"{func} writes into {hit[0][0]}")
        return func(*args, **kwargs)


def refusing_parameter_writes(model: nn.Module, run: Callable[[], T]) -> T:
    """``run()``, a run of ``model`` through ``functional_call`` on :func:`measured_parameter` views, never letting
    it write into a parameter of ``model``.

    A forward may write into its parameters in place: ``nn.Embedding(max_norm=...)`` renormalises the rows it looks
    up, a forward may ``clamp_`` a weight under ``no_grad``. On the views a measurement passes, such a write would
    land in the user's weights. Every operator is checked before it runs (a ``TorchDispatchMode``); one writing into
    a parameter's storage (also through ``.data`` or a view) is stopped before it lands, the parameter is marked
    (:func:`written_in_place`), so that this and every later run of the model work on a copy of it, and ``run``
    runs again. Models that write into no parameter pay one forward under the dispatch mode, and no copy. A model is
    checked until one run completes (the probe check at ``attach()``, or a first ``empirical_ntk``); later runs skip
    the check, so a forward that first writes into a weight on a later run is not caught (docs/guarantees.md).

    Raises:
        ParameterWriteError: When the forward writes into a parameter it reaches other than as the attribute of its
            module (a list or closure holding it), where no copy can take the write.
    """
    if model in _SCREENED:
        return run()
    while True:
        refusal = _WriteRefusal(model)
        try:
            with refusal:
                result = run()
        except BaseException:
            if not refusal.found:  # a failure of the forward itself, not the refusal (which it may have wrapped)
                raise
        if not refusal.found:
            _SCREENED[model] = True
            return result
        name, parameter = refusal.found[0]
        if written_in_place(parameter):
            raise ParameterWriteError(
                f"The model's forward writes in place into the parameter {name!r} through a reference other than "
                "its module attribute, so regimescope cannot run it on a copy without changing your weights. Read "
                "the parameter through its module (self.layer.weight) in forward, or move the in-place update "
                "(a clamp or renormalisation) after optimizer.step()."
            )
        for _, found in refusal.found:
            _WRITTEN[found] = True
