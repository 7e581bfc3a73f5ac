"""Code snapshots: a copy of the script's repository that queued trials run from.

With ``--snapshot-code``, the files that git tracks are copied into
``<root>/<experiment>/code/`` at submission, as they are in the working tree, so
uncommitted changes are included.  Each trial's command points into that copy, so
edits made after submission cannot reach queued trials.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcsweep.errors import UsageError

logger = logging.getLogger(__name__)

DEFAULT_LIMIT_MB = 200.0


@dataclass(frozen=True)
class SnapshotPlan:
    repo_root: str
    files: tuple[str, ...]  # paths relative to repo_root
    size_bytes: int


def plan_snapshot(vcs: dict[str, Any] | None, limit_mb: float) -> SnapshotPlan:
    """List the tracked files to copy; raise :class:`UsageError` above ``limit_mb``."""
    if not vcs or vcs.get("type") != "git":
        raise UsageError("--snapshot-code needs the script inside a git repository; "
                         "commit it to one, or drop --snapshot-code")
    import git

    root = vcs["root"]
    with git.Repo(root) as repo:
        listed = repo.git.ls_files("-z").split("\0")
    files, size = [], 0
    for relative in listed:
        path = os.path.join(root, relative)
        if relative and os.path.isfile(path) and not os.path.islink(path):
            files.append(relative)
            size += os.path.getsize(path)
    if size > limit_mb * 1e6:
        raise UsageError(
            f"--snapshot-code: the {len(files)} tracked files of {root} take {size / 1e6:.1f} MB, above "
            f"--snapshot-limit-mb {limit_mb:g}; raise the limit or drop --snapshot-code"
        )
    return SnapshotPlan(root, tuple(files), size)


def write_snapshot(plan: SnapshotPlan, destination: Path) -> dict[str, Any]:
    """Copy the planned files into ``destination``; return the record for the experiment."""
    for relative in plan.files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(plan.repo_root, relative), target)
    logger.info("copied %d files (%.1f MB) of %s into %s", len(plan.files), plan.size_bytes / 1e6,
                plan.repo_root, destination)
    return {"dir": str(destination), "repo_root": plan.repo_root, "files": len(plan.files),
            "size_bytes": plan.size_bytes}


def redirect_token(token: str, snapshot: dict[str, Any]) -> str:
    """Return ``token`` pointing into the snapshot if it is a path inside the repository."""
    root = snapshot["repo_root"].rstrip("/") + "/"
    if token.startswith(root):
        return os.path.join(snapshot["dir"], token[len(root):])
    return token
