"""world_size, rank and is_main_process inside and outside a torch.distributed job."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch.distributed as dist

from regimescope import distributed
from tests.integrations._spawn import process_group, run_ranks

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")


def test_outside_a_job() -> None:
    assert not dist.is_initialized()
    assert distributed.world_size() == 1
    assert distributed.rank() == 0
    assert distributed.is_main_process()


def _report(rank: int, world: int, init_file: str, out_dir: str) -> None:
    with process_group(rank, world, init_file):
        answer = f"{distributed.world_size()} {distributed.rank()} {distributed.is_main_process()}"
        (Path(out_dir) / f"rank{rank}.txt").write_text(answer)


def test_two_process_job(tmp_path: Path) -> None:
    run_ranks(_report, 2, tmp_path, str(tmp_path))
    assert (tmp_path / "rank0.txt").read_text() == "2 0 True"
    assert (tmp_path / "rank1.txt").read_text() == "2 1 False"
