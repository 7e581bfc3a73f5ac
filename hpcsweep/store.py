"""The store: TinyDB files and per-attempt files on the shared filesystem.

Layout of one experiment, under ``<root>/<name>/``::

    experiment.json      TinyDB, table "experiment": one document, written at submission
    trials.json          TinyDB, table "trials": the merged record of every trial
    summary.json         TinyDB, the few fields of each trial that status counts need
    batches/<id>.json    one submission: its trials in array order and its Slurm arrays
    attempts/<trial>.<key>.json   one file per attempt, written only by its array task
    trials/<trial id>/   the working directory of each trial
    writer.lock          held while a process rewrites experiment.json, trials.json or a batch

TinyDB does not support several processes writing one file, and file locks are
unreliable on NFS and Lustre.  So no two processes ever write the same file.  Array
tasks write only their own attempt files.  The TinyDB files and batch files are
written under the writer lock by the planner, ``collect``, ``requeue`` and ``insert``.  Every
write replaces its file atomically (:mod:`hpcsweep.atomic`), so a process killed at
any instant leaves each file whole.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage

from hpcsweep.atomic import write_json_atomic
from hpcsweep.errors import ExperimentNotFoundError, StoreError, UsageError
from hpcsweep.lock import WriterLock
from hpcsweep.trials import mark_lost, merge_attempts, new_trial

logger = logging.getLogger(__name__)

DEFAULT_ROOT = "./hpcsweep-runs"
EXPERIMENT_FILE = "experiment.json"
TRIALS_FILE = "trials.json"
SUMMARY_FILE = "summary.json"
# The fields of each trial that status counts need (see trials.merge_attempts and is_pending).
SUMMARY_FIELDS = ("id", "number", "status", "start_time", "heartbeat_time", "submitted_time", "requeue",
                  "job_id", "array_job_id", "attempts", "objective", "reason")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]{0,199}$")
# Version 1 of an experiment lives in <root>/<name>, version N >= 2 in <root>/<name>@vN.
_KEY = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.+=-]{0,199})(@v(?P<version>[1-9][0-9]*))?$")


class AtomicJSONStorage(Storage):
    """A TinyDB storage that replaces its file atomically on every write."""

    def __init__(self, path: str, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as err:
            raise StoreError(f"{self.path} is not valid JSON ({err}); restore it from a backup") from err

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        write_json_atomic(self.path, data, fsync=self.fsync)

    def close(self) -> None:
        pass


def check_experiment_name(name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise UsageError(
            f"invalid experiment name {name!r}: use letters, digits and _ . + = - only "
            f"(no '/', '@' or spaces), starting with a letter or digit"
        )
    return name


def experiment_key(name: str, version: int) -> str:
    """Return the directory name of ``version`` of experiment ``name``."""
    return name if version == 1 else f"{name}@v{version}"


def split_key(key: str) -> tuple[str, int]:
    """Return the name and version of the experiment stored under ``key``."""
    match = _KEY.match(key)
    if match is None or key in (".", ".."):
        raise UsageError(
            f"invalid experiment name {key!r}: use letters, digits and _ . + = - only "
            f"(no '/' or spaces), starting with a letter or digit, optionally followed by @vN"
        )
    return match["name"], int(match["version"] or 1)


def command_name(store: Store, key: str) -> str:
    """Return the name that ``-n`` takes for ``key``: ``NAME@v1`` for version 1 once other
    versions exist, because a bare ``NAME`` means the latest version."""
    name, version = split_key(key)
    if version == 1 and len(store.versions(name)) > 1:
        return f"{name}@v1"
    return key


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _table(path: Path, table: str) -> list[dict[str, Any]]:
    """Read the documents of a TinyDB table, in document-id order, without TinyDB's overhead."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        return []
    except json.JSONDecodeError as err:
        raise StoreError(f"{path} is not valid JSON ({err}); restore it from a backup") from err
    documents = data.get(table, {})
    return [documents[key] for key in sorted(documents, key=int)]


class Store:
    """All experiments under one root directory."""

    def __init__(self, root: Path | str | None = None) -> None:
        root = root or os.environ.get("HPCSWEEP_ROOT") or DEFAULT_ROOT
        self.root = Path(root).expanduser().absolute()

    # ------------------------------------------------------------ experiments

    def resolve(self, name: str) -> str:
        """Return the key of ``name``: itself if it names a version (``name@v2``), else the
        key of the latest version that exists (``name`` itself if none does)."""
        base, version = split_key(name)
        if "@v" in name:
            return experiment_key(base, version)
        versions = self.versions(base)
        return versions[-1][1] if versions else base

    def versions(self, name: str) -> list[tuple[int, str]]:
        """Return the (version, key) pairs of experiment ``name`` that exist, oldest first."""
        found = []
        for key in self.list_experiments():
            base, version = split_key(key)
            if base == name:
                found.append((version, key))
        return sorted(found)

    def experiment_dir(self, key: str) -> Path:
        """Return the directory of the experiment stored under ``key`` (see :meth:`resolve`)."""
        base, version = split_key(key)
        return self.root / experiment_key(base, version)

    def exists(self, name: str) -> bool:
        return (self.experiment_dir(name) / EXPERIMENT_FILE).is_file()

    def list_experiments(self) -> list[str]:
        """Return the keys of every experiment under the root."""
        if not self.root.is_dir():
            return []
        keys = []
        for entry in os.scandir(self.root):
            if entry.is_dir() and _KEY.match(entry.name) and not entry.name.endswith("@v1") and os.path.isfile(os.path.join(entry.path, EXPERIMENT_FILE)):
                keys.append(entry.name)
        return sorted(keys)

    def load_experiment(self, name: str) -> dict[str, Any]:
        """Return the experiment document; raise :class:`ExperimentNotFoundError` listing known names."""
        path = self.experiment_dir(name) / EXPERIMENT_FILE
        documents = _table(path, "experiment")
        if not documents:
            known = self.list_experiments()
            hint = f"known experiments: {', '.join(known)}" if known else f"no experiment exists under {self.root}"
            raise ExperimentNotFoundError(f"experiment {name!r} not found under {self.root}; {hint}")
        experiment: dict[str, Any] = documents[0]
        experiment.setdefault("key", path.parent.name)
        return experiment

    def lock(self, name: str, timeout_s: float = 30.0) -> WriterLock:
        return WriterLock(self.experiment_dir(name), timeout_s=timeout_s)

    def save_experiment(self, experiment: dict[str, Any]) -> None:
        """Write the experiment document; the caller holds the writer lock."""
        database = TinyDB(str(self.root / experiment["key"] / EXPERIMENT_FILE),
                          storage=AtomicJSONStorage)
        database.storage.write({"experiment": {"1": experiment}})

    # ----------------------------------------------------------------- trials

    def save_trials(self, name: str, trials: Iterable[dict[str, Any]], merged_files: dict[str, int]) -> None:
        """Replace the trial table; the caller holds the writer lock.

        ``merged_files`` maps each attempt file already merged into ``trials`` to
        its modification time, so that readers only read files changed since.
        """
        documents = {str(trial["number"] + 1): trial for trial in trials}
        summaries = {number: {field: trial.get(field) for field in SUMMARY_FIELDS}
                     for number, trial in documents.items()}
        directory = self.experiment_dir(name)
        meta = {"1": {"merged_files": merged_files}}
        for file_name in (SUMMARY_FILE, TRIALS_FILE):
            _remove_leftover_temporaries(directory, file_name)
        # The summary first: a crash between the two writes leaves a summary that is
        # ahead of trials.json, never one that misses trials that trials.json lists.
        TinyDB(str(directory / SUMMARY_FILE), storage=AtomicJSONStorage).storage.write(
            {"trials": summaries, "_meta": meta})
        TinyDB(str(directory / TRIALS_FILE), storage=AtomicJSONStorage).storage.write(
            {"trials": documents, "_meta": meta})

    def load_saved_trials(self, name: str, summary: bool = False) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Return the saved trials and the attempt files merged into them.

        With ``summary``, read the small summary table, which has only the fields that
        status counts need (:data:`SUMMARY_FIELDS`), if it exists.
        """
        path = self.experiment_dir(name) / TRIALS_FILE
        if summary and (path.parent / SUMMARY_FILE).is_file():
            path = path.parent / SUMMARY_FILE
        try:
            data = read_json(path)
        except FileNotFoundError:
            return [], {}
        except json.JSONDecodeError as err:
            raise StoreError(
                f"{path} is not valid JSON ({err}); rebuild it from the batch and attempt files with "
                f"'hpcsweep collect -n {command_name(self, name)} --rebuild'"
            ) from err
        documents = data.get("trials", {})
        trials = [documents[key] for key in sorted(documents, key=int)]
        meta = data.get("_meta", {}).get("1", {})
        return trials, dict(meta.get("merged_files", {}))

    def load_trials(
        self, name: str, heartbeat_s: float, summary: bool = False
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        """Return every trial with its attempts merged in, and the attempt files read.

        Reads only the attempt files that changed since the last ``collect``.  Writes
        nothing, so any number of readers may run beside array tasks and writers.
        With ``summary``, the trials carry only :data:`SUMMARY_FIELDS` and the fields
        of their attempts, which is enough to count statuses and much faster.
        """
        trials, merged_files = self.load_saved_trials(name, summary)
        attempts_dir = self.experiment_dir(name) / "attempts"
        current: dict[str, int] = {}
        changed_trials: set[str] = set()
        files_by_trial: dict[str, list[str]] = {}
        try:
            entries = list(os.scandir(attempts_dir))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            try:
                mtime_ns = entry.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            trial_id = entry.name.split(".", 1)[0]
            current[entry.name] = mtime_ns
            files_by_trial.setdefault(trial_id, []).append(entry.name)
            if merged_files.get(entry.name) != mtime_ns:
                changed_trials.add(trial_id)

        now = time.time()
        result = []
        for trial in trials:
            if trial["id"] in changed_trials:
                attempts = [
                    attempt for attempt in (
                        _read_attempt(attempts_dir / file_name, current[file_name])
                        for file_name in files_by_trial[trial["id"]]
                    ) if attempt is not None
                ]
                trial = merge_attempts(trial, attempts, heartbeat_s, now)
            else:
                trial = mark_lost(trial, heartbeat_s, now)
            result.append(trial)
        return result, current

    def rebuild_trials(self, name: str, experiment_id: str) -> int:
        """Rebuild the trial table from the batch files; return the number of trials.

        The caller holds the writer lock.  Attempts are merged by the next read.
        NOTE: trials added by ``insert`` and never submitted are in no batch, so
        they are not recovered.
        """
        trials: dict[str, dict[str, Any]] = {}
        for batch in self.list_batches(name):
            for entry in batch["trials"]:
                trial = trials.get(entry["id"])
                if trial is None:
                    trial = new_trial(experiment_id, entry["number"], entry["params"], entry["working_dir"])
                    trials[entry["id"]] = trial
                trial.update(batch=batch["id"], submitted_time=batch.get("created_time"))
        ordered = sorted(trials.values(), key=lambda trial: trial["number"])
        self.save_trials(name, ordered, {})
        return len(ordered)

    # ---------------------------------------------------------------- batches

    def batch_path(self, name: str, batch_id: str) -> Path:
        return self.experiment_dir(name) / "batches" / f"{batch_id}.json"

    def save_batch(self, name: str, batch: dict[str, Any]) -> None:
        write_json_atomic(self.batch_path(name, batch["id"]), batch)

    def load_batch(self, name: str, batch_id: str) -> dict[str, Any]:
        return read_json(self.batch_path(name, batch_id))  # type: ignore[no-any-return]

    def list_batches(self, name: str) -> list[dict[str, Any]]:
        directory = self.experiment_dir(name) / "batches"
        if not directory.is_dir():
            return []
        batches = []
        for path in sorted(directory.glob("b*.json")):
            try:
                batches.append(read_json(path))
            except ValueError as err:
                raise StoreError(f"batch file {path} is damaged ({err}); move it aside, then run "
                                 f"'hpcsweep collect -n {command_name(self, name)} --rebuild'") from err
        return batches

    def next_batch_id(self, name: str) -> str:
        directory = self.experiment_dir(name) / "batches"
        existing = sorted(directory.glob("b*.json")) if directory.is_dir() else []
        return f"b{len(existing) + 1:04d}"


def _read_attempt(path: Path, mtime_ns: int) -> dict[str, Any] | None:
    try:
        attempt = read_json(path)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        # Attempt files are written atomically, so this is damage from outside.
        logger.warning("skipping unreadable attempt file %s: %s", path, err)
        return None
    if not isinstance(attempt, dict):
        logger.warning("skipping attempt file %s: not a JSON object", path)
        return None
    if attempt.get("status") == "running":
        # The array task touches its file as a heartbeat.
        attempt["heartbeat_time"] = max(mtime_ns / 1e9, attempt.get("heartbeat_time") or 0)
    return attempt


def _remove_leftover_temporaries(directory: Path, file_name: str) -> None:
    """Remove temporaries of ``file_name`` left by a writer killed before its rename.

    Only the holder of the writer lock writes these files, so any temporary found
    by the holder belongs to a dead writer.
    """
    for path in directory.glob(f".{file_name}.*.tmp"):
        logger.info("removing %s, left by a writer that was killed", path)
        path.unlink(missing_ok=True)


def attempt_file_name(trial_id: str, key: str) -> str:
    return f"{trial_id}.{key}.json"
