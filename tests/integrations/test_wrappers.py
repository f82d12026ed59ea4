"""Wrapped models in plain loops: the monitor measures the inner module and never runs the wrapper."""

from __future__ import annotations

import torch
from torch import nn

import regimescope as rs


def test_a_compiled_model_is_measured_without_running_the_compiled_wrapper() -> None:
    compiled_graphs: list[torch.fx.GraphModule] = []

    def counting_backend(graph: torch.fx.GraphModule, example_inputs: list) -> object:
        compiled_graphs.append(graph)
        return graph.forward

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    compiled = torch.compile(model, backend=counting_backend)
    optimizer = torch.optim.SGD(compiled.parameters(), lr=0.1)
    x = torch.randn(32, 5)
    y = (x[:, 0] > 0).long()
    monitor = rs.RegimeMonitor(compiled, rs.Probe(x[:8], y[:8]), optimizer=optimizer, every=2, max_overhead=None).attach()
    assert monitor.model is model
    assert compiled_graphs == []  # step 0 was measured on the inner module
    for _ in range(4):
        loss = nn.functional.cross_entropy(compiled(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    traced = len(compiled_graphs)
    assert traced >= 1
    monitor.measure(5)
    assert len(compiled_graphs) == traced  # a probe of another batch size would have been traced again
    assert [r.step for r in monitor.history] == [0, 1, 2, 4, 5]
    monitor.close()
