"""The unsharded replica and the sharding check on a model every rank holds whole (one process).

Sharded models (``fully_shard``, FSDP1, tensor parallelism) run under two gloo processes in
``tests/integrations/test_fsdp.py``.
"""

from __future__ import annotations

import torch

from regimescope.sharded import ShardedReplica, check_sharding
from tests import _models


def test_a_whole_model_is_not_sharded() -> None:
    assert check_sharding(_models.build("cnn_bn")) is False


def test_the_replica_has_the_models_tree_parameters_and_buffers_without_its_hooks() -> None:
    model = _models.build("cnn_bn").eval()
    model.register_forward_hook(lambda module, args, out: out * 0)
    replica = ShardedReplica(model).module
    assert [(name, type(m)) for name, m in replica.named_modules()] == [
        (name, type(m)) for name, m in model.named_modules()
    ]
    assert all(a is b for a, b in zip(replica.parameters(), model.parameters()))  # not DTensors: shared as they are
    assert all(a is b for a, b in zip(replica.buffers(), model.buffers()))
    assert not replica.training and not replica._forward_hooks
    x = _models.inputs_for("cnn_bn", 4)
    assert torch.equal(model(x), torch.zeros_like(model(x)))
    with torch.no_grad():
        assert torch.equal(replica(x), model.forward(x))
