"""Scheduler queries for what the store alone cannot tell.

``status`` queries Slurm, in one ``squeue`` call for every array of the experiment,
which tasks still run, so that a trial whose heartbeat is late but whose task runs
is not called lost.  ``collect`` never calls the scheduler, and array tasks never
contact it at start-up.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterable

logger = logging.getLogger(__name__)


class SchedulerUnavailable(Exception):
    """The scheduler query failed; the message gives the reason."""


def running_tasks(array_ids: Iterable[str], timeout_s: float = 30.0) -> set[str]:
    """Return the ids (``123_4``, or ``123`` for a single job) of tasks Slurm reports running.

    One ``squeue`` call covers every array id; raises :class:`SchedulerUnavailable`
    if ``squeue`` is missing or fails.
    """
    return _squeue(array_ids, ["-t", "RUNNING,COMPLETING"], timeout_s)


def queued_tasks(array_ids: Iterable[str], timeout_s: float = 30.0) -> set[str]:
    """Return the ids of tasks that Slurm still has, pending or running, in one ``squeue`` call."""
    return _squeue(array_ids, [], timeout_s)


def local_job_alive(pid: int) -> bool:
    """Return True if ``pid`` is still a job started by submitit's local executor, not a reused pid."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"submitit" in handle.read()
    except OSError:
        return False


def _squeue(array_ids: Iterable[str], states: list[str], timeout_s: float) -> set[str]:
    ids = sorted({str(array_id) for array_id in array_ids if array_id})
    if not ids:
        return set()
    if shutil.which("squeue") is None:
        raise SchedulerUnavailable("squeue is not on PATH")
    command = ["squeue", "-h", "-r", *states, "-o", "%i", "-j", ",".join(ids)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError) as err:
        raise SchedulerUnavailable(f"squeue failed: {err}") from err
    if result.returncode != 0:
        # squeue exits 1 when every listed job has left the queue: nothing runs.
        if "Invalid job id" in result.stderr:
            return set()
        raise SchedulerUnavailable(f"squeue failed: {' '.join(result.stderr.split())}")
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


class Backoff:
    """Spaces scheduler queries: one per ``interval_s``, doubling after each failure."""

    def __init__(self, interval_s: float, max_interval_s: float = 600.0) -> None:
        self.interval_s = interval_s
        self.max_interval_s = max_interval_s
        self.failures = 0
        self.next_time = 0.0

    def due(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.next_time

    def record(self, ok: bool, now: float | None = None) -> float:
        """Record the outcome of a query; return the delay until the next one."""
        self.failures = 0 if ok else self.failures + 1
        delay = float(min(self.interval_s * 2 ** self.failures, self.max_interval_s))
        self.next_time = (time.monotonic() if now is None else now) + delay
        return delay
