"""The store: atomic writes, the writer lock, incremental reads, and crashes of a writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcsweep.atomic import write_json_atomic
from hpcsweep.collect import merge_and_save
from hpcsweep.errors import LockError, UsageError
from hpcsweep.lock import WriterLock
from hpcsweep.planner import SubmitRequest, plan_submission, record_plan
from hpcsweep.store import Store, attempt_file_name, check_experiment_name


def make_experiment(root: Path, name: str, count: int, tmp_path: Path) -> Store:
    script = tmp_path / "noop.py"
    script.write_text("pass\n")
    store = Store(root)
    request = SubmitRequest(name=name, command=["python", str(script), "--x~uniform(0, 1)"],
                            max_trials=count, seed=1, cwd=tmp_path)
    plan = plan_submission(store, request)
    store.experiment_dir(name).mkdir(parents=True)
    with store.lock(name):
        record_plan(store, plan)
    return store


def write_attempt(store: Store, name: str, trial: dict, status: str, objective: float | None = None) -> Path:
    key = f"{time.time_ns()}-1"
    path = store.experiment_dir(name) / "attempts" / attempt_file_name(trial["id"], key)
    write_json_atomic(path, {"trial": trial["id"], "key": key, "status": status, "start_time": time.time(),
                             "heartbeat_time": time.time(), "objective": objective, "attempt": 1})
    return path


def test_atomic_write_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_atomic_write_rejects_nan_without_damage(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"a": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


@pytest.mark.parametrize("name", ["a/b", "", ".", "..", "has space", "-dash", "x" * 300])
def test_experiment_name_rejected(name: str) -> None:
    with pytest.raises(UsageError):
        check_experiment_name(name)


def test_stale_lock_of_dead_process_is_broken(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "writer.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid,
                                                      "time": time.time()}))
    with WriterLock(tmp_path, timeout_s=1):
        assert json.loads((tmp_path / "writer.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "writer.lock").exists()


def test_live_lock_times_out_with_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "writer.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": holder.pid,
                                                          "time": time.time()}))
        with pytest.raises(LockError, match=f"pid {holder.pid}"):
            WriterLock(tmp_path, timeout_s=0.3).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_lock_from_other_host_expires(tmp_path: Path) -> None:
    (tmp_path / "writer.lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": time.time() - 3600}))
    with WriterLock(tmp_path, timeout_s=0.5, stale_after_s=600):
        pass
    (tmp_path / "writer.lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": time.time()}))
    with pytest.raises(LockError):
        WriterLock(tmp_path, timeout_s=0.3, stale_after_s=600).acquire()


def test_unlock_command(cli, tmp_path: Path) -> None:
    make_experiment(cli.root, "locked", 2, tmp_path)
    (cli.root / "locked" / "writer.lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "time": time.time()}))
    result = cli("unlock", "-n", "locked")
    assert result.exit_code == 0
    assert "removed the writer lock" in result.stderr
    assert not (cli.root / "locked" / "writer.lock").exists()


def test_load_trials_reads_only_changed_attempts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_experiment(tmp_path / "runs", "inc", 20, tmp_path)
    trials, _ = store.load_saved_trials("inc")
    for trial in trials[:10]:
        write_attempt(store, "inc", trial, "completed", objective=trial["number"])
    merged, files = store.load_trials("inc", 60)
    assert sum(t["status"] == "completed" for t in merged) == 10
    with store.lock("inc"):
        store.save_trials("inc", merged, files)

    import hpcsweep.store as store_module

    reads: list[Path] = []
    original = store_module._read_attempt
    monkeypatch.setattr(store_module, "_read_attempt", lambda path, mtime: reads.append(path) or original(path, mtime))
    write_attempt(store, "inc", trials[15], "broken")
    merged, _ = store.load_trials("inc", 60)
    assert len(reads) == 1
    assert merged[15]["status"] == "broken"
    assert sum(t["status"] == "completed" for t in merged) == 10


def test_unreadable_attempt_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = make_experiment(tmp_path / "runs", "bad", 2, tmp_path)
    trials, _ = store.load_saved_trials("bad")
    write_attempt(store, "bad", trials[0], "completed", objective=1.0)
    (store.experiment_dir("bad") / "attempts" / attempt_file_name(trials[1]["id"], "9-9")).write_text('{"status": "comp')
    merged, _ = store.load_trials("bad", 60)
    assert [t["status"] for t in merged] == ["completed", "new"]
    assert "skipping unreadable attempt file" in caplog.text


COLLECT_LOOP = """
import sys
from hpcsweep.collect import merge_and_save
from hpcsweep.store import Store
store = Store(sys.argv[1])
while True:
    merge_and_save(store, "crash")
"""


def test_killed_collect_leaves_store_whole(tmp_path: Path) -> None:
    store = make_experiment(tmp_path / "runs", "crash", 300, tmp_path)
    trials, _ = store.load_saved_trials("crash")
    for trial in trials[:200]:
        write_attempt(store, "crash", trial, "completed", objective=float(trial["number"]))
    trials_file = store.experiment_dir("crash") / "trials.json"
    for attempt in range(8):
        writer = subprocess.Popen([sys.executable, "-c", COLLECT_LOOP, str(store.root)])
        time.sleep(0.3 + 0.07 * attempt)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        data = json.loads(trials_file.read_text())  # never half-written
        assert len(data["trials"]) == 300
    merged, _ = store.load_trials("crash", 60)
    assert sum(t["status"] == "completed" for t in merged) == 200
    # The next writer removes temporaries that a killed writer left behind.
    merge_and_save(store, "crash")
    assert [p.name for p in store.experiment_dir("crash").iterdir() if p.name.endswith(".tmp")] == []


def test_damaged_trial_table_rebuilt(cli, tmp_path: Path) -> None:
    store = make_experiment(cli.root, "damaged", 6, tmp_path)
    make_experiment(cli.root, "healthy", 2, tmp_path)
    trials, _ = store.load_saved_trials("damaged")
    for trial in trials[:4]:
        write_attempt(store, "damaged", trial, "completed", objective=float(trial["number"]))
    (cli.root / "damaged" / "trials.json").write_text('{"trials": {"1": {"id"')
    (cli.root / "damaged" / "summary.json").unlink()

    listed = cli("list")
    assert listed.exit_code == 0
    assert "healthy" in listed.stdout
    assert "damaged  version 1, unreadable trials" in listed.stdout
    status = cli("status")
    assert status.exit_code == 0
    assert "healthy" in status.stdout
    assert "skipping damaged" in status.stderr
    broken = cli("collect", "-n", "damaged")
    assert broken.exit_code == 1
    assert "hpcsweep collect -n damaged --rebuild" in broken.stderr

    rebuilt = cli("collect", "-n", "damaged", "--rebuild", "--format", "json")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    rows = json.loads(rebuilt.stdout)
    assert len(rows) == 6
    assert sorted(row["objective"] for row in rows if row["objective"] is not None) == [0, 1, 2, 3]
    assert {row["id"] for row in rows} == {trial["id"] for trial in trials}
