"""Interruptions on a real Slurm cluster: time limits, stubborn scripts, scancel, kill -9.

Slow: a 1-minute time limit is the shortest Slurm has, and Slurm may send its
warning up to a minute early, so the scripts here checkpoint often and the
requeue budgets are generous.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import process_alive

pytestmark = pytest.mark.slurm

# Counts to 300 in steps of 0.1 s, saving its step on SIGTERM and exiting with 130.
RESUMABLE = """
import json, os, signal, sys, time
state = {"step": 0}
if os.path.exists("ckpt.json"):
    state = json.load(open("ckpt.json"))
open("starts.txt", "a").write(f"{os.environ['HPCSWEEP_ATTEMPT']} {state['step']}\\n")
stop = []
signal.signal(signal.SIGTERM, lambda *args: stop.append(1))
while state["step"] < 300:
    time.sleep(0.1)
    state["step"] += 1
    if stop:
        json.dump(state, open("ckpt.json", "w"))
        sys.exit(130)
from hpcsweep.client import report_objective
report_objective(state["step"])
"""

STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _ in range(4):
    if os.fork() == 0:
        open(f"child-{os.getpid()}", "w").close()
        time.sleep(600)
        os._exit(0)
time.sleep(600)
"""

# Sleeps on its first attempt, so that it can be cancelled or killed; completes after.
SLEEPY_FIRST = """
import os, sys, time
from hpcsweep.client import report_objective
if os.environ["HPCSWEEP_ATTEMPT"] == "1" and float(sys.argv[2]) == 1:
    open("sleeping", "w").close()
    time.sleep(300)
report_objective(float(sys.argv[2]))
"""


def collect(cli, name: str) -> dict[str, dict]:
    result = cli("collect", "-n", name, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return {row["params"]["/x"]: row for row in json.loads(result.stdout)}


def wait_until(predicate, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def sacct_states(job_id: str) -> list[str]:
    output = subprocess.run(["sacct", "-n", "-X", "-D", "-P", "-o", "State", "-j", job_id],
                            capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def test_timeout_requeues_and_resumes(cli, script) -> None:
    path = script(RESUMABLE)
    result = cli("submit", "-n", "resume", "--executor", "slurm", "--max-trials", "1", "--time", "1", "--signal-delay-s", "30",
                 "--grace-s", "10", "--max-requeues", "8", "--wait", "--poll-s", "1",
                 "--", "python", str(path), "--x~uniform(0, 1)")
    assert result.exit_code == 0, result.stderr
    [row] = collect(cli, "resume").values()
    assert row["status"] == "completed"
    assert row["objective"] == 300
    assert row["attempts"] >= 2
    starts = [line.split() for line in (Path(row["working_dir"]) / "starts.txt").read_text().splitlines()]
    assert [int(attempt) for attempt, _ in starts] == list(range(1, row["attempts"] + 1))
    assert int(starts[-1][1]) > 0  # the last attempt resumed from the checkpoint
    assert "REQUEUED" in sacct_states(row["job_id"].split("_")[0])


def test_stubborn_group_killed_after_grace(cli, script) -> None:
    path = script(STUBBORN)
    result = cli("submit", "-n", "stubborn", "--executor", "slurm", "--max-trials", "1", "--time", "1", "--signal-delay-s", "30",
                 "--grace-s", "3", "--max-requeues", "0", "--wait", "--poll-s", "1",
                 "--", "python", str(path), "--x~uniform(0, 1)")
    assert result.exit_code == 0, result.stderr
    [row] = collect(cli, "stubborn").values()
    assert row["status"] == "interrupted"
    assert "killed after a grace of 3 s" in row["reason"]
    assert "limit of 0 requeues was reached" in row["reason"]
    children = [int(p.name.split("-")[1]) for p in Path(row["working_dir"]).glob("child-*")]
    assert len(children) == 4
    assert not any(process_alive(pid) for pid in children)


def test_requeue_limit_on_slurm(cli, script) -> None:
    path = script("import sys; sys.exit(130)")
    result = cli("submit", "-n", "limit", "--executor", "slurm", "--max-trials", "1", "--time", "2", "--max-requeues", "1",
                 "--wait", "--poll-s", "1", "--", "python", str(path), "--x~uniform(0, 1)")
    assert result.exit_code == 0, result.stderr
    [row] = collect(cli, "limit").values()
    assert row["status"] == "interrupted"
    assert row["attempts"] == 2
    assert "limit of 1 requeues was reached" in row["reason"]
    assert sacct_states(row["job_id"].split("_")[0])[-1] == "FAILED"


@pytest.mark.parametrize("how", ["scancel", "kill-consumer", "kill-script"])
def test_dead_task_recovered_by_requeue(cli, script, how: str) -> None:
    path = script(SLEEPY_FIRST)
    name = f"dead-{how}"
    result = cli("submit", "-n", name, "--executor", "slurm", "--time", "5", "--heartbeat-s", "1",
                 "--algorithm", "grid", "--max-trials", "3", "--", "python", str(path), "--x~choices([0, 1, 2])")
    assert result.exit_code == 0, result.stderr
    root = cli.root / name

    def sleeping_attempt() -> dict | None:
        for attempt_path in (root / "attempts").glob("*.json"):
            attempt = json.loads(attempt_path.read_text())
            working_dir = root / "trials" / attempt["trial"]
            if attempt["status"] == "running" and (working_dir / "sleeping").exists():
                return attempt
        return None

    wait_until(lambda: sleeping_attempt() is not None, 120)
    attempt = sleeping_attempt()
    assert attempt is not None
    if how == "scancel":
        subprocess.run(["scancel", attempt["job_id"]], check=True)
        expected = {"interrupted", "lost"}
    elif how == "kill-consumer":
        os.kill(attempt["pid"], signal.SIGKILL)
        expected = {"lost"}
    else:
        script_pids = subprocess.run(["pgrep", "-f", f"{path} --x 1"], capture_output=True, text=True).stdout.split()
        assert script_pids
        for pid in script_pids:
            os.kill(int(pid), signal.SIGKILL)
        expected = {"broken"}

    def settled() -> bool:
        rows = collect(cli, name)
        return rows[1]["status"] in expected and rows[0]["status"] == rows[2]["status"] == "completed"

    wait_until(settled, 120)
    victim = collect(cli, name)[1]
    if victim["status"] == "broken":
        assert "SIGKILL" in victim["reason"]

    first = cli("requeue", "-n", name, "--status", "interrupted,lost,broken", "--wait", "--poll-s", "1")
    assert first.exit_code == 0, first.stderr
    assert "requeued: 1" in first.stdout
    rows = collect(cli, name)
    assert rows[1]["status"] == "completed"
    assert rows[1]["attempts"] == 2
    assert rows[1]["id"] == victim["id"]
    assert rows[1]["working_dir"] == victim["working_dir"]

    second = cli("requeue", "-n", name, "--status", "interrupted,lost,broken")
    assert second.exit_code == 0
    assert "no trial" in second.stderr
