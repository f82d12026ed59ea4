"""WriterLock: one writer per file; a lock whose owner is gone is taken over; with flock and with pid claims."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from regimescope.sinks import lock as lock_module
from regimescope.sinks.lock import LockHeldError, WriterLock


@pytest.fixture(params=["flock", "pid"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with the kernel lock, and with the pid claim used where there is no flock."""
    if request.param == "flock" and lock_module.fcntl is None:
        pytest.skip("no fcntl.flock on this platform")
    if request.param == "pid":
        monkeypatch.setattr(lock_module, "fcntl", None)
    return request.param


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_claim_is_refused_and_free_again_after_release(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "run.jsonl.lock"
    first, second = WriterLock(path), WriterLock(path)
    first.acquire()
    assert path.read_text() == f"{os.getpid()} {socket.gethostname()}"
    with pytest.raises(LockHeldError) as held:
        second.acquire()
    assert held.value.owner == f"{os.getpid()} {socket.gethostname()}" and held.value.path == path
    assert not second.held
    first.release()
    first.release()
    assert not path.exists()
    second.acquire()
    assert second.held
    second.release()


@pytest.mark.parametrize("owner", ["dead", "ours"])
def test_the_lock_file_of_a_process_that_is_gone_is_taken_over(tmp_path: Path, mode: str, owner: str) -> None:
    """``ours``: a restarted container often gives the training process the pid the crashed one had."""
    path = tmp_path / "run.jsonl.lock"
    path.write_text(f"{_dead_pid() if owner == 'dead' else os.getpid()} {socket.gethostname()}")
    claim = WriterLock(path)
    claim.acquire()
    assert path.read_text() == f"{os.getpid()} {socket.gethostname()}"
    claim.release()


def test_a_pid_claim_of_a_live_process_or_another_host_is_respected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "fcntl", None)
    path = tmp_path / "run.jsonl.lock"
    for owner in (f"{os.getppid()} {socket.gethostname()}", "1234 another-host", "garbage"):
        path.write_text(owner)
        with pytest.raises(LockHeldError) as held:
            WriterLock(path).acquire()
        assert held.value.owner == owner


def test_a_file_system_without_flock_falls_back_to_pid_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "_try_flock", lambda fd: None)
    path = tmp_path / "run.jsonl.lock"
    first = WriterLock(path)
    first.acquire()
    with pytest.raises(LockHeldError):
        WriterLock(path).acquire()
    first.release()
    assert not path.exists()


@pytest.mark.skipif(lock_module.fcntl is None, reason="no fcntl.flock on this platform")
def test_a_live_process_holding_the_lock_is_respected_and_its_death_frees_it(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from regimescope.sinks.lock import WriterLock; "
         f"WriterLock({str(path)!r}).acquire(); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError) as held:
            WriterLock(path).acquire()
        assert held.value.owner.split()[0] == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()
    assert path.exists()  # SIGKILL left it behind
    claim = WriterLock(path)
    claim.acquire()
    claim.release()
