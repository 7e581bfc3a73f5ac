"""Atomic file writes: a reader sees the old file or the new one, never a part.

The data goes to a temporary file in the same directory, is flushed and fsynced,
and the temporary file is renamed over the target, which POSIX makes atomic on one
filesystem (NFS and Lustre included).  The directory is fsynced too, so that the
rename itself survives a crash of the node.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; a store shared by a team
# needs the permissions that the user's umask gives to ordinary files.
FILE_MODE = 0o666 & ~_read_umask()


def write_bytes_atomic(path: Path, data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_directory(path.parent)


def write_text_atomic(path: Path, text: str, fsync: bool = True) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), fsync=fsync)


def write_json_atomic(path: Path, data: Any, fsync: bool = True, indent: int | None = None) -> None:
    separators = None if indent is not None else (",", ":")
    text = json.dumps(data, indent=indent, separators=separators, ensure_ascii=False, allow_nan=False)
    write_text_atomic(path, text + "\n", fsync=fsync)


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some filesystems do not open directories; the rename is still atomic
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
