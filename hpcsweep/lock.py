"""The writer lock of an experiment: at most one process rewrites its TinyDB files.

Only the planner, ``collect``, ``requeue`` and ``insert`` take it.  Array tasks never
write the TinyDB files, so they never wait for it.  The lock is a file that records
the host, pid and time of its holder.  It is created by hard-linking a private file
to the lock's name, which fails if the lock exists and is atomic on local
filesystems, NFS and Lustre.  POSIX and ``flock`` locks are avoided because NFS and
Lustre do not honour them reliably.

A lock is stale when its holder is a dead process on this host, or when it was
taken on another host more than ``stale_after_s`` seconds ago; a stale lock is
broken with a warning.  ``hpcsweep unlock`` removes a lock by hand.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from hpcsweep.errors import LockError

logger = logging.getLogger(__name__)

LOCK_NAME = "writer.lock"


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # os.kill(0, ...) would signal our own process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class WriterLock:
    """A context manager holding the writer lock in ``directory``."""

    def __init__(self, directory: Path, timeout_s: float = 30.0, stale_after_s: float = 600.0) -> None:
        self.path = directory / LOCK_NAME
        self.timeout_s = timeout_s
        self.stale_after_s = stale_after_s
        self._held = False

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})
        delay_s = 0.01
        announced = False
        while True:
            try:
                self._create(record)
            except FileExistsError:
                if self._break_if_stale():
                    continue
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"{self.path} is held by {self.describe_holder()}; wait for that command to "
                        f"finish, or run 'hpcsweep unlock -n {self._command_name()}' if it is gone"
                    ) from None
                if not announced and time.monotonic() > deadline - self.timeout_s + 1:
                    logger.warning("waiting up to %.0f s for the writer lock held by %s",
                                   self.timeout_s, self.describe_holder())
                    announced = True
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 0.5)
                continue
            except OSError as err:
                if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                    raise LockError(f"cannot create {self.path}: {err.strerror}; check permissions") from err
                raise
            self._held = True
            return

    def _command_name(self) -> str:
        # Version 1 is stored under the bare name, which -n reads as the latest version.
        key = self.path.parent.name
        if "@v" not in key and any(self.path.parent.parent.glob(f"{key}@v*")):
            return f"{key}@v1"
        return key

    def _create(self, record: str) -> None:
        """Create the lock file with its content in one step: write a private file, then
        hard-link it to the lock's name, which fails if the lock exists (atomic on NFS too),
        so no reader ever finds the lock empty."""
        private = self.path.with_name(f".{LOCK_NAME}.{socket.gethostname()}.{os.getpid()}")
        private.write_text(record, encoding="utf-8")
        try:
            os.link(private, self.path)
        finally:
            private.unlink(missing_ok=True)

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                self.path.unlink()
            except FileNotFoundError:
                logger.warning("writer lock %s was removed by another process", self.path)

    def read_holder(self) -> dict[str, object] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written right now, or cut short by a crash
        return data if isinstance(data, dict) else {}

    def describe_holder(self) -> str:
        holder = self.read_holder() or {}
        if not holder:
            return "an unknown process"
        taken = float(holder.get("time", 0) or 0)  # type: ignore[arg-type]
        since = f" for {time.time() - taken:.0f} s" if taken > 0 else ""
        return f"pid {holder.get('pid')} on {holder.get('host')}{since}"

    def holder_alive_here(self) -> bool:
        """Return True if the lock's holder is a live process on this host."""
        holder = self.read_holder() or {}
        if holder.get("host") != socket.gethostname():
            return False
        return _process_alive(int(holder.get("pid", 0)))  # type: ignore[call-overload]

    def _break_if_stale(self) -> bool:
        holder = self.read_holder()
        if holder is None:
            return True  # released meanwhile: try again at once
        if not holder:
            # An empty or unreadable lock: stale only if its file is old.
            try:
                age_s = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return True
            stale = age_s > self.stale_after_s
        elif holder.get("host") == socket.gethostname():
            stale = not _process_alive(int(holder.get("pid", 0)))  # type: ignore[call-overload]
        else:
            stale = time.time() - float(holder.get("time", 0)) > self.stale_after_s  # type: ignore[arg-type]
        if not stale:
            return False
        logger.warning("breaking stale writer lock %s held by %s", self.path, self.describe_holder())
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        return True


def unlock(directory: Path) -> bool:
    """Remove the writer lock in ``directory``; return whether there was one."""
    try:
        (directory / LOCK_NAME).unlink()
    except FileNotFoundError:
        return False
    return True
