"""``hpcsweep requeue``: submit chosen trials again, as the same trials, in a new array.

Requeue is idempotent: a trial that is running, completed, or already waiting for
a new attempt is never submitted again, so running the command twice submits
nothing the second time, and no trial runs more often than planned.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from hpcsweep.errors import SubmissionError, UsageError
from hpcsweep.store import Store
from hpcsweep.submission import ExecutorOptions, make_batch, submit_batch
from hpcsweep.trials import BROKEN, COMPLETED, INTERRUPTED, LOST, NEW, RUNNING

logger = logging.getLogger(__name__)

REQUEUE_STATUSES = (NEW, INTERRUPTED, LOST, BROKEN)


@dataclass
class RequeueResult:
    chosen: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (trial id, why)
    batch: dict[str, Any] | None = None
    jobs: list[Any] = field(default_factory=list)


def parse_statuses(text: str) -> set[str]:
    statuses = {item.strip() for item in text.split(",") if item.strip()}
    invalid = sorted(statuses - set(REQUEUE_STATUSES))
    if invalid or not statuses:
        raise UsageError(
            f"--status {text!r}: {', '.join(invalid) or 'empty'} cannot be requeued; "
            f"choose from {', '.join(REQUEUE_STATUSES)}"
        )
    return statuses


def select_trials(
    trials: list[dict[str, Any]], statuses: set[str], trial_ids: list[str]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Return the trials to requeue and the (id, reason) of those that were skipped."""
    by_id = {trial["id"]: trial for trial in trials}
    unknown = [trial_id for trial_id in trial_ids if trial_id not in by_id]
    if unknown:
        raise UsageError(
            f"--trial {unknown[0]}: no such trial in this experiment; "
            f"list the trial ids with 'hpcsweep status -n NAME --all'"
        )
    candidates = [by_id[trial_id] for trial_id in trial_ids] if trial_ids else trials
    chosen, skipped = [], []
    for trial in candidates:
        if trial["status"] in (COMPLETED, RUNNING):
            skipped.append((trial["id"], f"it is {trial['status']}"))
        elif trial.get("pending"):
            skipped.append((trial["id"], "a new attempt is already queued"))
        elif trial_ids or trial["status"] in statuses:
            chosen.append(trial)
    return chosen, skipped


def requeue_trials(
    store: Store, name: str, statuses: set[str], trial_ids: list[str], overrides: dict[str, Any],
    dry_run: bool = False,
) -> RequeueResult:
    """Choose the trials, record a new batch for them and submit it."""
    experiment = store.load_experiment(name)
    options = ExecutorOptions(**{**experiment["executor"], **overrides})
    options.check()
    heartbeat_s = float(experiment["settings"].get("heartbeat_s", 60))
    result = RequeueResult()

    with store.lock(name):
        trials, files = store.load_trials(name, heartbeat_s)
        result.chosen, result.skipped = select_trials(trials, statuses, trial_ids)
        if dry_run or not result.chosen:
            return result

        batch = make_batch(store.next_batch_id(name), result.chosen, options, requeue=True)
        store.save_batch(name, batch)
        result.batch = batch
        error: SubmissionError | None = None
        try:
            result.jobs = submit_batch(store.experiment_dir(name), name, batch, options,
                                       lambda b: store.save_batch(name, b))
        except SubmissionError as err:
            error = err

        # Mark as submitted only the trials of arrays that sbatch accepted.
        submitted: set[str] = set()
        for chunk in batch["chunks"]:
            if chunk.get("job_id"):
                submitted.update(t["id"] for t in batch["trials"][chunk["start"]:chunk["stop"]])
        now = time.time()
        for trial in trials:
            if trial["id"] in submitted:
                trial.update(batch=batch["id"], submitted_time=now, requeue=False, pending=True)
        store.save_trials(name, trials, files)
        if error is not None:
            raise error
    return result
