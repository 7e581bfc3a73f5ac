"""Trials and attempts: the records of the store and how attempts decide a trial's status.

A trial is planned once and may run several times (an *attempt* each time an array
task starts it).  Each attempt is written by its own array task into a file of its
own.  The trial's status is derived from its attempts by :func:`merge_attempts`,
which ``status`` runs on the fly and ``collect`` runs before saving.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

NEW = "new"
RUNNING = "running"
COMPLETED = "completed"
INTERRUPTED = "interrupted"
BROKEN = "broken"
LOST = "lost"

STATUSES = (NEW, RUNNING, COMPLETED, INTERRUPTED, BROKEN, LOST)
ENDED = frozenset({COMPLETED, INTERRUPTED, BROKEN, LOST})

# Fields that an attempt carries over to its trial.
ATTEMPT_FIELDS = (
    "status", "start_time", "end_time", "heartbeat_time", "exit_code", "objective", "results",
    "reason", "stderr_tail", "job_id", "array_job_id", "array_task_id", "host", "pid", "attempt",
    "interruption", "requeue", "vcs", "code_changed", "objective_name",
)


def params_key(params: dict[str, Any]) -> str:
    """Return a canonical text form of ``params``, equal for equal parameters."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def make_trial_id(experiment_id: str, params: dict[str, Any]) -> str:
    """Return the id of the trial with ``params``: equal parameters give equal ids."""
    digest = hashlib.sha256(f"{experiment_id}\n{params_key(params)}".encode()).hexdigest()
    return digest[:12]


def new_trial(experiment_id: str, number: int, params: dict[str, Any], working_dir: str) -> dict[str, Any]:
    return {
        "id": make_trial_id(experiment_id, params),
        "number": number,
        "params": params,
        "status": NEW,
        "working_dir": working_dir,
        "submitted_time": None,
        "attempts": 0,
        "attempt_history": [],
        "start_time": None,
        "end_time": None,
        "heartbeat_time": None,
        "exit_code": None,
        "objective": None,
        "results": None,
        "reason": None,
        "stderr_tail": None,
        "job_id": None,
        "array_job_id": None,
        "array_task_id": None,
        "host": None,
        "pid": None,
        "attempt": None,
        "interruption": None,
        "requeue": False,
        "batch": None,
        "vcs": None,
        "code_changed": None,
    }


def merge_attempts(
    trial: dict[str, Any], attempts: list[dict[str, Any]], heartbeat_s: float, now: float | None = None
) -> dict[str, Any]:
    """Return ``trial`` updated from all of its ``attempts``.

    A completed attempt wins over any later one, so a result that arrives late is
    kept.  Otherwise the latest attempt decides; a running attempt whose heartbeat
    is older than twice ``heartbeat_s`` is ``lost``.
    """
    merged = dict(trial)
    if not attempts:
        return mark_lost(merged, heartbeat_s, now)
    ordered = sorted(attempts, key=lambda a: (a.get("start_time") or 0, a.get("key", "")))
    completed = [a for a in ordered if a.get("status") == COMPLETED]
    chosen = completed[-1] if completed else ordered[-1]

    for name in ATTEMPT_FIELDS:
        merged[name] = chosen.get(name)
    merged["attempts"] = len(ordered)
    merged["attempt_history"] = [
        {
            "key": a.get("key"), "status": a.get("status"), "job_id": a.get("job_id"),
            "start_time": a.get("start_time"), "end_time": a.get("end_time"),
            "exit_code": a.get("exit_code"), "reason": a.get("reason"),
        }
        for a in ordered
    ]
    return mark_lost(merged, heartbeat_s, now)


def mark_lost(trial: dict[str, Any], heartbeat_s: float, now: float | None = None) -> dict[str, Any]:
    """Return ``trial`` with status ``lost`` if it runs but its heartbeat is stale, and with
    ``pending`` set if a new attempt of it is queued."""
    trial = dict(trial, pending=is_pending(trial))
    if trial.get("status") != RUNNING:
        return trial
    now = time.time() if now is None else now
    beat = trial.get("heartbeat_time") or trial.get("start_time") or now
    if now - beat > 2 * heartbeat_s:
        trial = dict(trial)
        trial["status"] = LOST
        trial["reason"] = f"no heartbeat for {now - beat:.0f} s (interval {heartbeat_s:g} s)"
    return trial


def is_pending(trial: dict[str, Any]) -> bool:
    """Return True if a new attempt of ``trial`` is queued: it was submitted (again) after
    its latest attempt started, or that attempt requeued itself."""
    if trial.get("status") in (COMPLETED, RUNNING):
        return False
    if trial.get("requeue"):
        return True
    submitted = trial.get("submitted_time")
    return submitted is not None and submitted > (trial.get("start_time") or 0)


def is_final(trial: dict[str, Any]) -> bool:
    """Return True if ``trial`` has ended and no new attempt of it is queued."""
    return trial.get("status") in ENDED and not trial.get("pending")


def sort_key(trial: dict[str, Any], maximize: bool) -> tuple[int, float, int]:
    """Order trials best objective first, trials without an objective last."""
    objective = trial.get("objective")
    if objective is None or not isinstance(objective, (int, float)) or math.isnan(objective):
        return (1, 0.0, trial.get("number", 0))
    return (0, -objective if maximize else objective, trial.get("number", 0))


def count_statuses(trials: list[dict[str, Any]]) -> dict[str, int]:
    counts = {status: 0 for status in STATUSES}
    for trial in trials:
        counts[trial.get("status", NEW)] = counts.get(trial.get("status", NEW), 0) + 1
    return counts
