"""The version-control state of the script's repository, read with gitpython.

Read at submission and by each trial when it starts, to detect code changes.
``status`` and ``collect`` never import this module, because gitpython and
``git status`` on a large repository cost time.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _without(names: list[str], root: Any, ignore: list[Path]) -> list[str]:
    if not ignore or root is None:
        return names
    prefixes = []
    for folder in ignore:
        try:
            relative = Path(folder).resolve().relative_to(Path(root).resolve())
        except ValueError:
            continue  # that folder is outside the repository
        if str(relative) == ".":
            # The store is the repository's root: ignore the experiment folders in it.
            prefixes += [f"{entry.name}/" for entry in Path(folder).iterdir()
                         if (entry / "experiment.json").is_file() or (entry / "writer.lock").exists()]
        else:
            prefixes.append(f"{relative}/")
    return [name for name in names if not any(name.startswith(prefix) for prefix in prefixes)]


def read_vcs_state(path: Path, ignore: list[Path] | None = None) -> dict[str, Any]:
    """Return the git state of the repository that contains ``path``.

    Untracked files under the folders in ``ignore`` (the store's root, whose trial
    folders change all the time) do not count as changes.

    Keys: ``type`` ("git" or None), ``root``, ``commit`` (full hash), ``branch``
    (None when HEAD is detached), ``detached``, ``dirty``, and ``diff_sha256``, a
    hash of the changes against HEAD, untracked files that git does not ignore
    included.  Outside a repository, ``type`` is None and the rest is empty.
    """
    try:
        import git
    except ImportError:  # gitpython is a dependency, but git itself may be missing
        return {"type": None, "reason": "gitpython or git is not available"}

    start = path if path.is_dir() else path.parent
    try:
        repo = git.Repo(start, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return {"type": None, "reason": f"{start} is not inside a git repository"}
    except git.GitError as err:
        logger.warning("cannot read the git repository at %s: %s", start, err)
        return {"type": None, "reason": str(err)}

    with repo:
        try:
            commit = repo.head.commit.hexsha
        except ValueError:
            commit = None  # a repository without commits
        detached = repo.head.is_detached
        branch = None if detached else repo.active_branch.name
        try:
            diff = repo.git.diff("HEAD", "--binary") if commit else ""
            untracked = _without(repo.untracked_files, repo.working_tree_dir, ignore or [])
        except git.GitCommandError as err:
            logger.warning("git diff failed in %s: %s", repo.working_tree_dir, err)
            diff, untracked = "", []
        digest = hashlib.sha256(diff.encode("utf-8", "surrogateescape"))
        for name in sorted(untracked):
            digest.update(b"\0untracked\0" + name.encode("utf-8", "surrogateescape") + b"\0")
            try:
                digest.update((Path(repo.working_tree_dir or ".") / name).read_bytes())
            except OSError:
                pass
        dirty = bool(diff) or bool(untracked)
        return {
            "type": "git",
            "root": str(repo.working_tree_dir),
            "commit": commit,
            "branch": branch,
            "detached": detached,
            "dirty": dirty,
            "diff_sha256": digest.hexdigest() if dirty else None,
        }
