"""One writer per file: an exclusive claim that a crashed process cannot leave behind.

Two writers appending to one JSONL file interleave it; :class:`WriterLock` lets the second one fail at once with
the fix instead. The claim is a lock file next to the written file, holding the owner's pid and host:

- where the operating system offers ``flock`` (Linux, macOS, most file systems), the claim is that kernel lock,
  which the kernel drops when the owner's process ends in any way (``SIGKILL`` included), so a lock file left by a
  dead process is taken over;
- elsewhere (no ``fcntl``, or a file system that refuses ``flock``) the lock file itself is the claim, and a claim
  whose pid no longer runs on this host is stale and taken over (on Windows, where a process cannot be asked
  safely, only a claim that names this very process's pid is; the message of any other says which file to delete).
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the pid claim below is used
    fcntl = None  # type: ignore[assignment]

_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
_HELD_HERE: set[str] = set()
"""Lock files this process holds through pid claims (a pid of ours in a lock we do not hold is a former process's)."""


class LockHeldError(RuntimeError):
    """Another live writer holds the lock.

    Attributes:
        path: The lock file.
        owner: ``"<pid> <host>"`` of the holder, as its lock file says (empty when unreadable).
    """

    def __init__(self, path: Path, owner: str) -> None:
        self.path = path
        self.owner = owner
        super().__init__(f"{path} is held by process {owner or '(unknown)'}")


def _owner() -> str:
    return f"{os.getpid()} {socket.gethostname()}"


def _pid_alive(pid: int) -> bool | None:
    """Whether ``pid`` runs on this host; ``None`` where that cannot be asked safely (``os.kill`` ends a Windows
    process)."""
    if os.name != "posix":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        return True
    return True


def _try_flock(fd: int) -> bool | None:
    """``True`` when the kernel lock was taken, ``False`` when another open file holds it, ``None`` when
    unsupported."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        if error.errno in _UNSUPPORTED:
            return None
        raise
    return True


def _read_owner(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


class WriterLock:
    """An exclusive claim of ``path`` (a lock file) by this writer, from :meth:`acquire` to :meth:`release`.

    Args:
        path: The lock file, e.g. ``run/regimescope.jsonl.lock``.

    Attributes:
        path: The lock file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the claim."""
        return self._fd is not None

    def acquire(self) -> None:
        """Claim the lock, taking over one a dead process left.

        Raises:
            LockHeldError: When a live writer holds it; the message names its pid and host.
            OSError: When the lock file cannot be created (e.g. a read-only folder).
        """
        if self._fd is not None:
            return
        if fcntl is not None:
            for _ in range(8):  # a releasing writer may delete the file between our open and our lock: try again
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    locked = self._lock(fd)
                except BaseException:
                    os.close(fd)
                    raise
                if locked:
                    self._fd = fd
                    return
                os.close(fd)
                if locked is None:  # this file system has no flock
                    break
            else:
                raise LockHeldError(self.path, _read_owner(self.path))
        self._fd = self._claim_by_pid()

    def _lock(self, fd: int) -> bool | None:
        """Take the kernel lock of ``fd`` and write our name in it: ``True`` when held, ``False`` when ``path`` was
        deleted meanwhile (try again), ``None`` when this file system has no ``flock`` (the empty file that the
        open may just have created is removed, so that it claims nothing).

        Raises:
            LockHeldError: When a live writer holds the lock.
        """
        locked = _try_flock(fd)
        if locked is None:
            if os.fstat(fd).st_size == 0:
                os.unlink(self.path)
            return None
        if not locked:
            raise LockHeldError(self.path, _read_owner(self.path))
        if not self._still_the_file(fd):
            return False
        os.ftruncate(fd, 0)
        os.write(fd, _owner().encode())
        return True

    def _still_the_file(self, fd: int) -> bool:
        """Whether ``path`` still names the file ``fd`` locked (a releasing writer deletes it)."""
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def _claim_by_pid(self) -> int:
        """Create the lock file exclusively, replacing one whose owner no longer runs (no ``flock`` here)."""
        for _ in range(8):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = _read_owner(self.path)
                if not self._stale(owner):
                    raise LockHeldError(self.path, owner) from None
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
                continue
            os.write(fd, _owner().encode())
            _HELD_HERE.add(str(self.path.resolve()))
            return fd
        raise LockHeldError(self.path, _read_owner(self.path))

    def _stale(self, owner: str) -> bool:
        """Whether a pid claim ``"<pid> <host>"`` belongs to a process that is gone."""
        pid_text, _, host = owner.partition(" ")
        if not pid_text.isdigit() or host != socket.gethostname():
            return False  # another host's process cannot be asked; the message says how to clear it
        pid = int(pid_text)
        if pid == os.getpid():
            return str(self.path.resolve()) not in _HELD_HERE  # a former process that had our pid
        return _pid_alive(pid) is False

    def release(self) -> None:
        """Give the claim up and delete the lock file. Releasing twice is harmless."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD_HERE.discard(str(self.path.resolve()))
        try:
            os.unlink(self.path)  # while still holding it, so a waiting writer never locks a deleted file for good
        except OSError:
            pass
        os.close(fd)
