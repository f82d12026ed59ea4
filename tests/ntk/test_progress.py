"""`empirical_ntk(progress=True)` draws a bar on a terminal, counts every layer group, and changes nothing."""

from __future__ import annotations

import io

import pytest
import torch

import regimescope as rs
from tests import _models


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("name", ["mlp", "transformer_block"])
def test_progress_bar_counts_groups_and_is_erased(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setenv("TERM", "xterm")
    model, x = _models.build(name), _models.inputs_for(name, 4)
    with_bar = rs.empirical_ntk(model, x, dtype=torch.float64, progress=True)
    plan = rs.ntk.plan_ntk(model, x, dtype=torch.float64)
    groups = len(plan.layer_groups) + len(plan.generic_groups)
    text = terminal.getvalue()
    assert f"{groups}/{groups}" in text
    assert text.endswith("\r")
    assert torch.equal(with_bar, rs.empirical_ntk(model, x, dtype=torch.float64))


def test_no_bar_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    rs.empirical_ntk(_models.build("mlp"), _models.inputs_for("mlp", 4), progress=True)
    assert pipe.getvalue() == ""
