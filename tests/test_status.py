"""``status``: store-first counts, one squeue call for lost-looking trials, backoff on errors."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from hpcsweep.atomic import write_json_atomic
from hpcsweep.planner import SubmitRequest, plan_submission, record_plan
from hpcsweep.scheduler import Backoff
from hpcsweep.status import build_report, watch
from hpcsweep.store import Store, attempt_file_name

# Logs each call; fails every fifth call; reports task 100_1 as running.
FAKE_SQUEUE = """#!/bin/sh
echo "$@" >> "{log}"
count=$(wc -l < "{log}")
if [ $((count % 5)) -eq 0 ]; then
    echo "squeue: error: Socket timed out on send/recv operation" >&2
    exit 1
fi
echo 100_1
"""


@pytest.fixture
def fake_squeue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "squeue.log"
    log.touch()
    path = bin_dir / "squeue"
    path.write_text(FAKE_SQUEUE.format(log=log))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def make_running_experiment(root: Path, tmp_path: Path) -> Store:
    """Four trials: two with stale heartbeats on array 100 (tasks 1 and 2), one completed, one new."""
    script = tmp_path / "noop.py"
    script.write_text("pass\n")
    store = Store(root)
    plan = plan_submission(store, SubmitRequest(name="watched", command=["python", str(script), "--x~uniform(0, 1)"],
                                                max_trials=4, seed=1, heartbeat_s=1, cwd=tmp_path))
    store.experiment_dir("watched").mkdir(parents=True)
    with store.lock("watched"):
        record_plan(store, plan)
    trials, _ = store.load_saved_trials("watched")
    old = time.time() - 120
    for task, trial in enumerate(trials[:3], start=1):
        status = "completed" if task == 3 else "running"
        path = store.experiment_dir("watched") / "attempts" / attempt_file_name(trial["id"], f"{task}-1")
        write_json_atomic(path, {"trial": trial["id"], "key": f"{task}-1", "status": status, "start_time": old,
                                 "heartbeat_time": old, "objective": 1.0 if status == "completed" else None,
                                 "job_id": f"100_{task}", "array_job_id": "100", "array_task_id": str(task)})
        os.utime(path, (old, old))
    return store


def test_lost_trial_still_running_in_slurm(cli, tmp_path: Path, fake_squeue: Path) -> None:
    make_running_experiment(cli.root, tmp_path)
    result = cli("status", "-n", "watched", "--json", "--all")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    by_job = {trial["job_id"]: trial for trial in data["trials"]}
    assert by_job["100_1"]["status"] == "running"
    assert "Slurm reports its task 100_1 running" in by_job["100_1"]["reason"]
    assert by_job["100_2"]["status"] == "lost"
    assert data["counts"]["completed"] == 1
    assert data["counts"]["new"] == 1
    assert fake_squeue.read_text().splitlines() == ["-h -r -t RUNNING,COMPLETING -o %i -j 100"]


def test_collect_never_calls_scheduler(cli, tmp_path: Path, fake_squeue: Path) -> None:
    make_running_experiment(cli.root, tmp_path)
    rows = json.loads(cli("collect", "-n", "watched", "--format", "json").stdout)
    assert sorted(row["status"] for row in rows) == ["completed", "lost", "lost", "new"]
    assert fake_squeue.read_text() == ""


def test_watch_queries_once_per_interval_with_backoff(cli, tmp_path: Path, fake_squeue: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = make_running_experiment(cli.root, tmp_path)
    watch(store, ["watched"], False, interval_s=0.05, max_rounds=40)
    calls = fake_squeue.read_text().splitlines()
    output = capsys.readouterr()
    assert len(re.findall(r"^--- \d\d:\d\d:\d\d$", output.out, re.MULTILINE)) == 40
    # One call covers every array; the fifth fails and doubles the wait, so fewer calls than rounds.
    assert 5 <= len(calls) < 40
    assert all(call.endswith("-j 100") for call in calls)


def test_backoff_doubles_after_failures() -> None:
    backoff = Backoff(10, max_interval_s=60)
    assert backoff.record(ok=False, now=0) == 20
    assert not backoff.due(now=19)
    assert backoff.due(now=20)
    assert backoff.record(ok=False, now=20) == 40
    assert backoff.record(ok=False, now=60) == 60
    assert backoff.record(ok=True, now=120) == 10


def test_status_without_scheduler(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_running_experiment(cli.root, tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = build_report(store, ["watched"], True, Backoff(1))
    assert report[0]["counts"]["lost"] == 2


def test_status_bad_interval(cli, tmp_path: Path) -> None:
    make_running_experiment(cli.root, tmp_path)
    result = cli("status", "-n", "watched", "--watch", "--interval-s", "0")
    assert result.exit_code == 2
    assert "--interval-s: expected a number above 0, got '0'" in result.stderr
