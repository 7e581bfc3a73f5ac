"""Cancelling the jobs of an experiment, on Slurm or on the local executor."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from typing import Any

from hpcsweep.collect import load_view
from hpcsweep.errors import SubmissionError
from hpcsweep.scheduler import local_job_alive
from hpcsweep.store import Store
from hpcsweep.trials import RUNNING

logger = logging.getLogger(__name__)


def cancel_experiment(store: Store, name: str) -> list[str]:
    """Cancel every job of the experiment; return the ids of the jobs cancelled."""
    _, trials = load_view(store, name)
    batches = store.list_batches(name)
    slurm_ids = [c["job_id"] for b in batches if b["executor"] == "slurm" for c in b["chunks"] if c.get("job_id")]
    local_ids = [int(pid) for b in batches if b["executor"] == "local"
                 for c in b["chunks"] if c.get("job_id") for pid in str(c["job_id"]).split(",")]

    cancelled: list[str] = []
    if slurm_ids:
        result = subprocess.run(["scancel", *slurm_ids], capture_output=True, text=True)
        if result.returncode != 0:
            raise SubmissionError(
                f"scancel {' '.join(slurm_ids)} failed: {' '.join(result.stderr.split())}"
            )
        cancelled += slurm_ids

    # Locally, stop the consumers of running trials first, so that each records its
    # trial as interrupted, then the job controllers.
    consumer_pids = {int(t["pid"]) for t in _running_attempts(trials) if t.get("pid")}
    consumer_pids = {pid for pid in consumer_pids if local_job_alive(pid)}
    parents = {_parent_pid(pid) for pid in consumer_pids}
    for pid in sorted(consumer_pids):
        _terminate(pid)
    for pid in local_ids:
        # A controller whose consumer got the signal ends once the trial is recorded.
        if local_job_alive(pid) and (pid in parents or _terminate(pid)):
            cancelled.append(str(pid))
    if consumer_pids:
        time.sleep(0.5)
    return cancelled


def _terminate(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def _parent_pid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _running_attempts(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in trials if t.get("status") == RUNNING]
