"""Stress: kill a tenth of the consumers of a local sweep with SIGKILL, then requeue.

200 trials, 16 at a time, heartbeat 0.1 s.  While the sweep runs, one thread kills
random running consumers and another reads every JSON file of the store again and
again, counting any that cannot be parsed.  Afterwards ``requeue --status lost`` runs
until nothing is left to requeue, and the script checks that every trial completed
exactly once: one completed attempt per trial, no trial missing or duplicated.

Usage: python bench/stress_requeue.py [--trials 200] [--parallelism 16] [--kill-fraction 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPT = """
import random, sys, time
from hpcsweep.client import report_objective
time.sleep(random.uniform(0.3, 0.8))
report_objective(float(sys.argv[2]))
"""


def hpcsweep(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hpcsweep", "--root", str(root), *args],
                          capture_output=True, text=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--kill-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    rng = random.Random(options.seed)

    work = Path(tempfile.mkdtemp(prefix="hpcsweep-stress-"))
    root = work / "runs"
    script = work / "train.py"
    script.write_text(SCRIPT)
    experiment_dir = root / "stress"
    started = time.monotonic()
    submitted = hpcsweep(root, "submit", "-n", "stress", "--executor", "local", "--max-trials", str(options.trials),
                         "--parallelism", str(options.parallelism), "--heartbeat-s", "0.1", "--seed", "1",
                         "--", sys.executable, str(script), "--x~uniform(0, 1)")
    if submitted.returncode != 0:
        print(submitted.stderr, file=sys.stderr)
        return 1

    stop = threading.Event()
    unreadable: list[str] = []
    reads = [0]
    killed: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            for path in list(experiment_dir.rglob("*.json")):
                if path.name.startswith("."):
                    continue  # a temporary being written
                try:
                    json.loads(path.read_text())
                    reads[0] += 1
                except FileNotFoundError:
                    continue
                except ValueError as err:
                    unreadable.append(f"{path}: {err}")

    def killer() -> None:
        target = int(options.trials * options.kill_fraction)
        while not stop.is_set() and len(killed) < target:
            time.sleep(rng.uniform(0.05, 0.3))
            running = []
            for path in (experiment_dir / "attempts").glob("*.json"):
                try:
                    attempt = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if attempt.get("status") == "running" and attempt["trial"] not in killed:
                    running.append(attempt)
            if running:
                victim = rng.choice(running)
                try:
                    os.kill(victim["pid"], signal.SIGKILL)
                    killed.append(victim["trial"])
                except ProcessLookupError:
                    pass

    threads = [threading.Thread(target=reader), threading.Thread(target=killer)]
    for thread in threads:
        thread.start()

    def counts() -> dict[str, int]:
        return json.loads(hpcsweep(root, "status", "-n", "stress", "--json").stdout)["counts"]

    # Wait until no trial is new or running: the killed ones then show as lost.
    while True:
        current = counts()
        if current["new"] == 0 and current["running"] == 0:
            break
        time.sleep(0.5)
    requeue_rounds = 0
    while counts()["completed"] < options.trials:
        result = hpcsweep(root, "requeue", "-n", "stress", "--status", "lost,interrupted,broken", "--wait",
                          "--poll-s", "0.2")
        requeue_rounds += 1
        if result.returncode != 0 or requeue_rounds > 10:
            print(result.stderr, file=sys.stderr)
            break
    stop.set()
    for thread in threads:
        thread.join()
    elapsed_s = time.monotonic() - started

    rows = json.loads(hpcsweep(root, "collect", "-n", "stress", "--format", "json").stdout)
    ids = [row["id"] for row in rows]
    completed_attempts: dict[str, int] = {}
    for path in (experiment_dir / "attempts").glob("*.json"):
        attempt = json.loads(path.read_text())
        if attempt["status"] == "completed":
            completed_attempts[attempt["trial"]] = completed_attempts.get(attempt["trial"], 0) + 1

    report = {
        "trials": options.trials,
        "parallelism": options.parallelism,
        "consumers_killed": len(killed),
        "requeue_rounds": requeue_rounds,
        "completed": sum(row["status"] == "completed" for row in rows),
        "rows": len(rows),
        "duplicate_ids": len(ids) - len(set(ids)),
        "trials_completed_more_than_once": sum(count > 1 for count in completed_attempts.values()),
        "store_reads_while_running": reads[0],
        "unreadable_reads": len(unreadable),
        "elapsed_s": round(elapsed_s, 1),
    }
    print(json.dumps(report, indent=2))
    for line in unreadable[:5]:
        print(f"unreadable: {line}", file=sys.stderr)
    ok = (report["completed"] == options.trials and report["rows"] == options.trials
          and report["duplicate_ids"] == 0 and report["trials_completed_more_than_once"] == 0
          and report["unreadable_reads"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
