"""Waiting for a sweep: a progress bar on stderr until every trial has ended.

The store is read every ``poll_s`` seconds.  The scheduler is queried only through
submitit's jobs, whose Slurm watcher queries ``sacct`` once per interval for all
jobs together.  When every job has finished, trials that never ended (their task
died before it could record them) stop the wait as well.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from hpcsweep.collect import load_view
from hpcsweep.store import Store
from hpcsweep.trials import count_statuses, is_final

logger = logging.getLogger(__name__)


def wait_for_trials(
    store: Store, name: str, trial_ids: set[str], jobs: list[Any], poll_s: float = 2.0
) -> dict[str, int]:
    """Block until every trial in ``trial_ids`` has ended; return the counts by status."""
    from tqdm import tqdm

    progress = tqdm(total=len(trial_ids), desc=name, unit="trial", file=sys.stderr, leave=True, mininterval=1.0)
    last_counts: dict[str, int] = {}
    jobs_done_since: float | None = None
    try:
        while True:
            _, trials = load_view(store, name)
            chosen = [trial for trial in trials if trial["id"] in trial_ids]
            ended = sum(is_final(trial) for trial in chosen)
            counts = count_statuses(chosen)
            if counts != last_counts:
                progress.set_postfix({k: v for k, v in counts.items() if v}, refresh=False)
                last_counts = counts
            progress.update(ended - progress.n)
            if ended == len(chosen):
                _reap(jobs)
                return counts
            if jobs and all(_job_done(job) for job in jobs):
                # Give the last attempt files a moment to land after their job ends.
                jobs_done_since = jobs_done_since or time.monotonic()
                if time.monotonic() - jobs_done_since > max(3 * poll_s, 5.0):
                    logger.warning(
                        "every job has ended but %d trials have not; their tasks died before "
                        "recording them (see 'hpcsweep status -n %s --all')", len(chosen) - ended, name,
                    )
                    return counts
            time.sleep(poll_s)
    finally:
        progress.close()


def _reap(jobs: list[Any], timeout_s: float = 10.0) -> None:
    """Wait briefly for local jobs, which exit just after their last trial is recorded."""
    local = [job for job in jobs if type(job).__name__ == "LocalJob"]
    deadline = time.monotonic() + timeout_s
    while local and time.monotonic() < deadline:
        local = [job for job in local if not _job_done(job)]
        if local:
            time.sleep(0.05)


def _job_done(job: Any) -> bool:
    try:
        return bool(job.done())
    except Exception as err:  # a failed scheduler query is not an end, so keep waiting
        logger.debug("cannot read the state of job %s: %s", getattr(job, "job_id", "?"), err)
        return False
