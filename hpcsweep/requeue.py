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
from hpcsweep.scheduler import SchedulerUnavailable, local_job_alive, queued_tasks
from hpcsweep.store import Store, command_name
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


def still_queued(store: Store, key: str, trials: list[dict[str, Any]]) -> set[str]:
    """Return the ids of pending trials whose job is still queued or running.

    A trial submitted but never started, or requeued by its task, is pending.  If
    its job was cancelled or failed before the trial started, it is pending no
    more and may be requeued.  One ``squeue`` call covers every Slurm array.
    """
    pending = [trial for trial in trials if trial.get("pending")]
    if not pending:
        return set()
    batches = {batch["id"]: batch for batch in store.list_batches(key)}
    job_of: dict[str, str] = {}
    for trial in pending:
        if trial.get("requeue") and trial.get("job_id"):
            job_of[trial["id"]] = str(trial["job_id"])
            continue
        batch = batches.get(trial.get("batch") or "")
        if batch is None:
            continue
        position = next((i for i, t in enumerate(batch["trials"]) if t["id"] == trial["id"]), None)
        for chunk in batch["chunks"]:
            if position is not None and chunk["start"] <= position < chunk["stop"] and chunk.get("job_id"):
                if batch["executor"] == "local":
                    job_of[trial["id"]] = f"local:{chunk['job_id']}"
                elif chunk["stop"] - chunk["start"] == 1:
                    job_of[trial["id"]] = str(chunk["job_id"])
                else:
                    job_of[trial["id"]] = f"{chunk['job_id']}_{position - chunk['start']}"

    slurm_arrays = {job.split("_")[0] for job in job_of.values() if not job.startswith("local:")}
    try:
        queued = queued_tasks(slurm_arrays)
    except SchedulerUnavailable as err:
        logger.warning("%s; trials waiting for a Slurm job are taken as still queued", err)
        return {trial_id for trial_id, job in job_of.items() if not job.startswith("local:")} | {
            trial_id for trial_id, job in job_of.items() if job.startswith("local:") and _local_alive(job)}
    alive = set()
    for trial_id, job in job_of.items():
        if job.startswith("local:"):
            if _local_alive(job):
                alive.add(trial_id)
        elif job in queued or job.split("_")[0] in queued:
            alive.add(trial_id)
    return alive


def _local_alive(job: str) -> bool:
    return any(local_job_alive(int(pid)) for pid in job.removeprefix("local:").split(",") if pid.isdigit())


def select_trials(
    trials: list[dict[str, Any]], statuses: set[str], trial_ids: list[str], queued: set[str] | None = None
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Return the trials to requeue and the (id, reason) of requested trials that were skipped.

    ``queued`` lists pending trials whose job still exists; pending trials not in
    it lost their job before they started, and may be requeued.
    """
    by_id = {trial["id"]: trial for trial in trials}
    unknown = [trial_id for trial_id in trial_ids if trial_id not in by_id]
    if unknown:
        raise UsageError(
            f"--trial {unknown[0]}: no such trial in this experiment; "
            f"list the trial ids with 'hpcsweep status -n NAME --all'"
        )
    candidates = [by_id[trial_id] for trial_id in dict.fromkeys(trial_ids)] if trial_ids else [
        trial for trial in trials if trial["status"] in statuses]
    chosen, skipped = [], []
    for trial in candidates:
        if trial["status"] in (COMPLETED, RUNNING):
            skipped.append((trial["id"], f"it is {trial['status']}"))
        elif trial.get("pending") and (queued is None or trial["id"] in queued):
            skipped.append((trial["id"], "a new attempt is already queued"))
        else:
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
        queued = still_queued(store, name, trials)
        result.chosen, result.skipped = select_trials(trials, statuses, trial_ids, queued)
        if dry_run or not result.chosen:
            return result

        batch = make_batch(store.next_batch_id(name), result.chosen, options, requeue=True)
        store.save_batch(name, batch)
        result.batch = batch
        error: SubmissionError | None = None
        try:
            result.jobs = submit_batch(store.experiment_dir(name), name, batch, options,
                                       lambda b: store.save_batch(name, b),
                                       retry_command=f"'hpcsweep requeue -n {command_name(store, name)}' again")
        except SubmissionError as err:
            error = err
            # A requeue batch is never resumed: its unsubmitted arrays are dropped, and
            # running requeue again chooses their trials anew.
            batch["chunks"] = [chunk for chunk in batch["chunks"] if chunk.get("job_id")]
            if batch["chunks"]:
                store.save_batch(name, batch)
            else:
                store.batch_path(name, batch["id"]).unlink(missing_ok=True)

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
