"""Bad input gets a clear error at attach time (or documented handling)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import regimescope as rs
from tests import _models


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_wrong_probe_shape_names_shapes_and_fix() -> None:
    monitor = rs.RegimeMonitor(_mlp(), rs.Probe(torch.randn(5, 7)))
    with pytest.raises(ValueError, match=r"could not run on the probe \(input shapes \(5, 7\)\).*batch first"):
        monitor.attach()


def test_probe_on_another_device() -> None:
    monitor = rs.RegimeMonitor(_mlp(), rs.Probe(torch.randn(5, 4, device="meta")))
    with pytest.raises(ValueError, match=r"probe is on meta but the model is on cpu.*probe.to\('cpu'\)"):
        monitor.attach()


class FixedProjection(nn.Module):
    """A layer followed by a fixed float32 projection held as a plain attribute (not a buffer: no cast reaches it)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 3)
        self.projection = torch.randn(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x) @ self.projection


def test_a_compute_dtype_the_model_cannot_run_in_fails_at_attach_with_the_fix() -> None:
    """``dtype=float64`` casts parameters, buffers and inputs but not a plain tensor attribute: the forward then
    mixes float64 and float32. attach() runs the probe as a measurement runs it, so it refuses there, not at the
    first measurement; with the default ``dtype=None`` the same model measures."""
    model, probe = FixedProjection(), rs.Probe(torch.randn(6, 4))
    with pytest.raises(ValueError, match=r"dtype=torch.float64 as asked.*dtype=None"):
        rs.RegimeMonitor(model, probe, dtype=torch.float64).attach()
    with rs.RegimeMonitor(model, probe, max_overhead=None) as monitor:
        assert monitor.history[0].step == 0


def test_model_without_parameters() -> None:
    monitor = rs.RegimeMonitor(nn.ReLU(), torch.randn(5, 4))
    with pytest.raises(ValueError, match="no trainable parameters"):
        monitor.attach()


def test_fully_frozen_model() -> None:
    model = _mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        rs.RegimeMonitor(model, torch.randn(5, 4)).attach()


def test_frozen_layers_are_left_out_of_kernel_and_weights() -> None:
    model = _models.frozen_mlp()
    x = _models.inputs_for("frozen_mlp", 6)
    sink = rs.MemorySink()
    monitor = rs.RegimeMonitor(model, x, sinks=[sink]).attach()
    frozen = [name for name, m in model.named_modules() if any(not p.requires_grad for p in m.parameters(recurse=False))]
    tags = sink.tags()
    assert frozen
    for name in frozen:
        assert f"regimescope/kernel/share/{name}" not in tags
        assert f"regimescope/weights/relative_change/{name}" not in tags
    monitor.close()


def test_tied_weights_counted_once() -> None:
    model = _models.tied_lm()
    x = _models.inputs_for("tied_lm", 5)
    kernels = rs.empirical_ntk(model, x, per_layer=True, dtype=torch.float64)
    tied = model.embed.weight if hasattr(model, "embed") else None
    owners = [name for name, m in model.named_modules() if any(p is tied for p in m.parameters(recurse=False))]
    assert len(owners) == 2
    assert owners[0] in kernels and owners[1] not in kernels


def test_model_returning_dict_uses_logits_or_asks_for_output_fn() -> None:
    model = _models.dict_output_model()
    x = _models.inputs_for("dict_output_model", 5)
    rs.RegimeMonitor(model, x).attach().close()

    class NoLogits(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> dict:
            return {"scores": self.fc(x)}

    with pytest.raises(TypeError, match=r"no .logits. tensor.*output_fn"):
        rs.RegimeMonitor(NoLogits(), torch.randn(5, 4)).attach()
    monitor = rs.RegimeMonitor(NoLogits(), torch.randn(5, 4), output_fn=lambda out: out["scores"]).attach()
    assert monitor.regime is not None
    monitor.close()


def test_argument_errors_are_specific() -> None:
    with pytest.raises(TypeError, match="must be a regimescope.Probe"):
        rs.RegimeMonitor(_mlp(), "inputs.pt")
    with pytest.raises(ValueError, match="`every` must be a positive integer"):
        rs.RegimeMonitor(_mlp(), torch.randn(5, 4), every=0)
    with pytest.raises(ValueError, match="`mode` must be one of 'probe_stats', 'batch_stats', 'eval', 'train'"):
        rs.RegimeMonitor(_mlp(), torch.randn(5, 4), mode="inference")
    with pytest.raises(ValueError, match="`layers` names"):
        rs.RegimeMonitor(_mlp(), torch.randn(5, 4), layers=["nope"]).attach()
    other = torch.optim.SGD(_mlp().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer's parameters belongs to the model"):
        rs.RegimeMonitor(_mlp(), torch.randn(5, 4), optimizer=other).attach()


def test_probe_validation() -> None:
    with pytest.raises(ValueError, match="at least 2 examples"):
        rs.Probe(torch.randn(1, 4))
    with pytest.raises(ValueError, match="share the batch size"):
        rs.Probe((torch.randn(4, 3), torch.randn(5, 3)))
    with pytest.raises(ValueError, match="targets"):
        rs.Probe(torch.randn(4, 3), torch.zeros(5))


def test_wrappers_are_unwrapped() -> None:
    model = _mlp()
    wrapped = nn.DataParallel(model)
    monitor = rs.RegimeMonitor(wrapped, torch.randn(5, 4))
    assert monitor.model is model
