"""Lost trials, late results, the requeue command, and requeue options, on the local executor."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from hpcsweep.store import Store


def rows_by_id(cli, name: str) -> dict[str, dict]:
    result = cli("collect", "-n", name, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


def wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


SLOW_FIRST = """
    import os, sys, time
    from hpcsweep.client import report_objective
    if os.environ["HPCSWEEP_ATTEMPT"] == "1" and float(sys.argv[2]) < 0.5:
        open("started", "w").close()
        time.sleep(600)
    report_objective(float(sys.argv[2]))
"""


def test_killed_consumer_is_lost_then_requeued(cli, script) -> None:
    path = script(SLOW_FIRST)
    result = cli("submit", "-n", "lost", "--executor", "local", "--max-trials", "2", "--algorithm", "grid",
                 "--heartbeat-s", "0.2", "--", "python", str(path), "--x~choices([0.25, 0.75])")
    assert result.exit_code == 0, result.stderr
    store = Store(cli.root)
    attempts = cli.root / "lost" / "attempts"

    def slow_trial_running() -> bool:
        trials, _ = store.load_trials("lost", 0.2)
        return any(t["status"] == "running" and t["params"]["/x"] == 0.25 for t in trials)

    wait_for(slow_trial_running)
    trials, _ = store.load_trials("lost", 0.2)
    [slow] = [t for t in trials if t["params"]["/x"] == 0.25]
    running = [json.loads(p.read_text()) for p in attempts.glob(f"{slow['id']}.*.json")]
    [victim] = [a for a in running if a["status"] == "running"]
    os.kill(victim["pid"], signal.SIGKILL)

    wait_for(lambda: json.loads(cli("status", "-n", "lost", "--json").stdout)["counts"]["lost"] == 1)
    dry = cli("requeue", "-n", "lost", "--status", "lost", "--dry-run")
    assert dry.exit_code == 0
    assert dry.stdout.startswith(victim["trial"])
    assert "1 trials would be requeued" in dry.stderr

    first = cli("requeue", "-n", "lost", "--status", "lost", "--wait", "--poll-s", "0.2")
    assert first.exit_code == 0, first.stderr
    assert "requeued: 1" in first.stdout
    rows = rows_by_id(cli, "lost")
    assert rows[victim["trial"]]["status"] == "completed"
    assert rows[victim["trial"]]["attempts"] == 2
    assert all(row["status"] == "completed" for row in rows.values())

    second = cli("requeue", "-n", "lost", "--status", "lost,interrupted")
    assert second.exit_code == 0
    assert "no trial of 'lost' to requeue" in second.stderr
    assert len(list((cli.root / "lost" / "batches").glob("*.json"))) == 2


def test_late_result_of_lost_trial_is_kept(cli, script) -> None:
    path = script("from hpcsweep.client import report_objective; report_objective(1.0)")
    assert cli("submit", "-n", "late", "--executor", "local", "--max-trials", "1", "--wait", "--poll-s", "0.2",
               "--heartbeat-s", "0.1", "--", "python", str(path), "--x~uniform(0, 1)").exit_code == 0
    attempts = cli.root / "late" / "attempts"
    [done] = list(attempts.glob("*.json"))
    record = json.loads(done.read_text())

    # Pretend the attempt had stopped beating: it shows as lost.
    old = time.time() - 60
    record.update(status="running", objective=None, results=None, end_time=None, start_time=old,
                  heartbeat_time=old)
    done.write_text(json.dumps(record))
    os.utime(done, (old, old))
    [row] = rows_by_id(cli, "late").values()
    assert row["status"] == "lost"

    # Its result arrives after all.
    record.update(status="completed", objective=0.5, results={"objective": 0.5}, end_time=time.time())
    done.write_text(json.dumps(record))
    [row] = rows_by_id(cli, "late").values()
    assert row["status"] == "completed"
    assert row["objective"] == 0.5


def test_completed_trial_is_not_rerun(cli, script) -> None:
    path = script("""
        open("runs.txt", "a").write("run\\n")
        from hpcsweep.client import report_objective
        report_objective(1.0)
    """)
    assert cli("submit", "-n", "once", "--executor", "local", "--max-trials", "1", "--wait", "--poll-s", "0.2",
               "--", "python", str(path), "--x~uniform(0, 1)").exit_code == 0
    [row] = rows_by_id(cli, "once").values()
    result = cli("requeue", "-n", "once", "--trial", row["id"])
    assert result.exit_code == 0
    assert f"skipped trial {row['id']}: it is completed" in result.stderr

    # An array task handed a completed trial exits at once.
    from hpcsweep.consumer import run_array_task

    assert run_array_task(str(cli.root / "once"), "b0001", 0) == {"skipped": 1}
    assert (Path(row["working_dir"]) / "runs.txt").read_text() == "run\n"


def test_requeue_bad_input(cli, script) -> None:
    path = script("from hpcsweep.client import report_objective; report_objective(1.0)")
    assert cli("submit", "-n", "bad", "--executor", "local", "--max-trials", "1", "--wait", "--poll-s", "0.2",
               "--", "python", str(path), "--x~uniform(0, 1)").exit_code == 0
    before = sorted(p.name for p in (cli.root / "bad" / "batches").iterdir())
    cases = [
        (("requeue", "-n", "nope"), "'nope' not found"),
        (("requeue", "-n", "bad", "--trial", "0123456789ab"), "--trial 0123456789ab: no such trial"),
        (("requeue", "-n", "bad", "--status", "completed"), "completed cannot be requeued"),
        (("requeue", "-n", "bad", "--parallelism", "0"), "--parallelism 0"),
    ]
    for args, words in cases:
        result = cli(*args)
        assert result.exit_code == 2, args
        assert words in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in (cli.root / "bad" / "batches").iterdir()) == before


def test_submit_rejects_bad_requeue_options(cli, script) -> None:
    path = script("print(1)")
    cases = [
        (["--max-requeues", "-1"], "--max-requeues -1"),
        (["--grace-s", "100", "--signal-delay-s", "90"], "--grace-s 100 is longer than --signal-delay-s 90"),
        (["--forward-signal", "SIGNOPE"], "--forward-signal 'SIGNOPE'"),
        (["--forward-signal", "KILL"], "--forward-signal 'KILL'"),
    ]
    for options, words in cases:
        result = cli("submit", "-n", "opts", "--executor", "local", *options, "--", "python", str(path))
        assert result.exit_code == 2, options
        assert words in result.stderr, (options, result.stderr)
        assert result.stderr.count("\n") == 1
        assert not (cli.root / "opts").exists()


def test_cancelled_sweep_can_be_requeued(cli, script) -> None:
    path = script("""
        import sys, time
        from hpcsweep.client import report_objective
        if sys.argv[4] == "1":
            time.sleep(600)
        report_objective(float(sys.argv[2]))
    """)
    submitted = cli("submit", "-n", "stop", "--executor", "local", "--max-trials", "6", "--parallelism", "1",
                    "--grace-s", "1", "--", "python", str(path), "--x~uniform(0, 1)", "--slow", "1")
    assert submitted.exit_code == 0, submitted.stderr
    store = Store(cli.root)
    wait_for(lambda: any(t["status"] == "running" for t in store.load_trials("stop", 60)[0]))
    assert cli("cancel", "-n", "stop").exit_code == 0
    wait_for(lambda: not any(t["status"] == "running" for t in store.load_trials("stop", 60)[0]))
    rows = rows_by_id(cli, "stop")
    statuses = sorted(row["status"] for row in rows.values())
    assert statuses.count("new") == 5
    assert statuses.count("interrupted") == 1
    [stopped] = [row for row in rows.values() if row["status"] == "interrupted"]
    assert stopped["reason"].startswith("cancelled")

    # The lane that would have run the five new trials is gone, so they can be requeued.
    time.sleep(1)
    dry = cli("requeue", "-n", "stop", "--status", "new", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "5 trials would be requeued" in dry.stderr
    assert dry.stderr.count("skipped") == 0


def test_duplicate_trial_ids_requeued_once() -> None:
    from hpcsweep.requeue import select_trials

    trials = [{"id": "a", "status": "lost", "pending": False}, {"id": "b", "status": "lost", "pending": False}]
    chosen, skipped = select_trials(trials, {"lost"}, ["a", "a"])
    assert [trial["id"] for trial in chosen] == ["a"]
    assert skipped == []


def test_failed_requeue_is_not_resumable(cli, script, monkeypatch) -> None:
    path = script("import sys; sys.exit(1)")
    submitted = cli("submit", "-n", "norez", "--executor", "local", "--max-trials", "1", "--wait", "--poll-s", "0.2",
                    "--", "python", str(path), "--x~uniform(0, 1)")
    assert submitted.exit_code == 0, submitted.stderr
    import hpcsweep.requeue as requeue_module
    from hpcsweep.errors import SubmissionError

    def failing(*args, **kwargs):
        raise SubmissionError("sbatch failed for array 1 of 1: no such partition")

    monkeypatch.setattr(requeue_module, "submit_batch", failing)
    result = cli("requeue", "-n", "norez", "--status", "broken")
    assert result.exit_code == 1
    assert [p.name for p in (cli.root / "norez" / "batches").iterdir()] == ["b0001.json"]
    resumed = cli("submit", "-n", "norez", "--resume")
    assert "nothing to resume" in resumed.stderr
    again = cli("requeue", "-n", "norez", "--status", "broken", "--dry-run")
    assert "1 trials would be requeued" in again.stderr


def test_watch_stops_when_only_orphans_left(cli, script) -> None:
    from hpcsweep.status import watch

    path = script("""
        import sys, time
        time.sleep(600)
    """)
    assert cli("submit", "-n", "orphans", "--executor", "local", "--max-trials", "3", "--parallelism", "1",
               "--grace-s", "1", "--", "python", str(path), "--x~uniform(0, 1)").exit_code == 0
    store = Store(cli.root)
    wait_for(lambda: any(t["status"] == "running" for t in store.load_trials("orphans", 60)[0]))
    assert cli("cancel", "-n", "orphans").exit_code == 0
    wait_for(lambda: not any(t["status"] == "running" for t in store.load_trials("orphans", 60)[0]))
    time.sleep(1)
    started = time.monotonic()
    watch(store, ["orphans"], False, interval_s=0.1, max_rounds=100)
    assert time.monotonic() - started < 5
