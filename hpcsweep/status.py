"""``hpcsweep status``: counts of trials by status, from the store, optionally watched.

The store alone gives every status.  For trials that look lost (late heartbeat)
on Slurm, one ``squeue`` call for all arrays checks whether their task still runs,
in which case they stay ``running``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from hpcsweep.collect import format_table, load_view
from hpcsweep.scheduler import Backoff, SchedulerUnavailable, running_tasks
from hpcsweep.store import Store
from hpcsweep.trials import LOST, RUNNING, STATUSES, count_statuses, is_final

logger = logging.getLogger(__name__)


def _recheck_lost(trials: list[dict[str, Any]], running: set[str]) -> None:
    for trial in trials:
        if trial["status"] == LOST and trial.get("job_id") in running:
            trial["status"] = RUNNING
            trial["reason"] = f"{trial.get('reason')}, but Slurm reports its task {trial['job_id']} running"


def lost_array_ids(trials: list[dict[str, Any]]) -> set[str]:
    return {str(t["array_job_id"] or t["job_id"]) for t in trials
            if t["status"] == LOST and (t.get("array_job_id") or "").isdigit()}


def build_report(
    store: Store, names: list[str], with_trials: bool, backoff: Backoff | None = None
) -> list[dict[str, Any]]:
    """Return one entry per experiment: its counts, and its trials if ``with_trials``.

    With ``backoff``, trials that look lost are checked against ``squeue`` when a
    query is due, in one call for all experiments.
    """
    views = [(name, *load_view(store, name, summary=not with_trials)) for name in names]
    arrays = set().union(*(lost_array_ids(trials) for _, _, trials in views)) if views else set()
    if arrays and backoff is not None and backoff.due():
        try:
            running = running_tasks(arrays)
        except SchedulerUnavailable as err:
            backoff.record(ok=False)
            logger.warning("%s; trials with a late heartbeat are counted as lost", err)
        else:
            backoff.record(ok=True)
            for _, _, trials in views:
                _recheck_lost(trials, running)

    report = []
    for name, experiment, trials in views:
        entry: dict[str, Any] = {"name": name, "version": experiment["version"], "total": len(trials),
                                 "counts": count_statuses(trials),
                                 "ended": all(is_final(t) for t in trials)}
        if with_trials:
            entry["trials"] = [
                {"id": t["id"], "number": t["number"], "status": t["status"], "attempts": t.get("attempts", 0),
                 "objective": t.get("objective"), "job_id": t.get("job_id"), "reason": t.get("reason")}
                for t in trials
            ]
        report.append(entry)
    return report


def format_report(report: list[dict[str, Any]]) -> str:
    header = ["experiment", "total", *STATUSES]
    rows = [[e["name"], str(e["total"]), *(str(e["counts"][s]) for s in STATUSES)] for e in report]
    text = format_table(header, rows)
    for entry in report:
        if "trials" in entry:
            trial_rows = [[t["id"], str(t["number"]), t["status"], str(t["attempts"]),
                           "" if t["objective"] is None else repr(t["objective"]),
                           t["job_id"] or "", t["reason"] or ""] for t in entry["trials"]]
            text += f"\n{entry['name']}:\n"
            text += format_table(["id", "number", "status", "attempts", "objective", "job", "reason"], trial_rows)
    return text


def watch(
    store: Store, names: list[str], with_trials: bool, interval_s: float, max_rounds: int | None = None,
    as_json: bool = False,
) -> None:
    """Print the report every ``interval_s`` seconds until every trial has ended, or until the
    only trials left are new ones that no job will run.  With ``as_json``, one JSON line a round."""
    backoff = Backoff(interval_s)
    rounds = 0
    while True:
        report = build_report(store, names, with_trials, backoff)
        if as_json:
            sys.stdout.write(json.dumps(report) + "\n")
        else:
            sys.stdout.write(f"--- {time.strftime('%H:%M:%S')}\n{format_report(report)}")
        sys.stdout.flush()
        rounds += 1
        # Trials judged lost while squeue failed may still run, so watch until squeue succeeds.
        settled = backoff.failures == 0
        if (settled and all(entry["ended"] for entry in report)) or (
                max_rounds is not None and rounds >= max_rounds):
            return
        if settled and all(entry["ended"] or _only_orphans_left(store, entry) for entry in report):
            logger.warning("the trials left are new and no job will run them; submit them with "
                           "'hpcsweep requeue -n NAME --status new' or 'submit -n NAME --pending-only'")
            return
        time.sleep(interval_s)


def _only_orphans_left(store: Store, entry: dict[str, Any]) -> bool:
    """Return True if every unfinished trial of ``entry`` is new and waits for no live job."""
    from hpcsweep.requeue import still_queued

    counts = entry["counts"]
    if counts["running"] or not counts["new"]:
        return False
    experiment = store.load_experiment(entry["name"])
    trials, _ = store.load_trials(entry["name"], float(experiment["settings"].get("heartbeat_s", 60)))
    waiting = [trial for trial in trials if trial["status"] == "new"]
    queued = still_queued(store, entry["name"], waiting)
    return not any(trial["id"] in queued for trial in waiting)
