"""Benchmark ``hpcsweep --help`` and ``hpcsweep status`` on an experiment of 10,000 trials.

The experiment is built without running anything: the planner records 10,000
trials, and a completed attempt file is written for half of them, as array tasks
would write them.  ``status`` is timed twice.  Before the first ``collect``, it
reads and merges the 5,000 attempt files.  After it, the attempts are merged into
trials.json, and ``status`` only compares the modification times of the attempt
files with those recorded there.  Every command is timed as a
subprocess, interleaved with ``python -c pass``, the baseline of the same run.
The console script next to this Python is run directly, because a pyenv shim in
front of it adds start-up time that is not hpcsweep's.

Usage: ``python bench/cli_startup.py [--repeats N] [--profile] [--write-doc]``.
``--profile`` also prints the slowest imports of ``hpcsweep --help`` and a
cProfile of ``status`` run in this process.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import subprocess
import tempfile
import time
from pathlib import Path

import benchlib

from hpcsweep.cli import main as hpcsweep_main
from hpcsweep.planner import SubmitRequest, plan_submission, record_plan
from hpcsweep.store import Store, attempt_file_name
from hpcsweep.submission import ExecutorOptions

TRIALS = 10_000
COMPLETED = TRIALS // 2
NAME = "big"
HPCSWEEP = str(Path(benchlib.PYTHON).parent / "hpcsweep")
PRIORS = [
    "--lr~loguniform(1e-5, 1.0)",
    "--dropout~uniform(0, 0.5)",
    "--optimizer~choices(['sgd', 'adam'])",
]


def build_experiment(root: Path, workdir: Path) -> None:
    """Record 10,000 planned trials and write a completed attempt for the first half."""
    script = workdir / "trial.py"
    script.write_text("from hpcsweep.client import report_objective\n\nreport_objective(0.5)\n")
    store = Store(root)
    request = SubmitRequest(
        name=NAME, command=[benchlib.PYTHON, str(script), *PRIORS], max_trials=TRIALS, seed=0,
        executor=ExecutorOptions(executor="local"), cwd=workdir,
    )
    plan = plan_submission(store, request)
    store.experiment_dir(NAME).mkdir(parents=True, exist_ok=True)
    with store.lock(NAME):
        record_plan(store, plan)

    attempts_dir = store.experiment_dir(NAME) / "attempts"
    now = time.time()
    for trial in plan.new_trials[:COMPLETED]:
        key = f"{time.time_ns()}-{os.getpid()}"
        objective = 1.0 / (1.0 + trial["number"])
        attempt = {
            "trial": trial["id"], "key": key, "status": "completed", "attempt": 1,
            "start_time": now - 60, "end_time": now - 30, "heartbeat_time": now - 30,
            "job_id": f"7000_{trial['number']}", "array_job_id": "7000",
            "array_task_id": str(trial["number"]), "host": "node001", "pid": 4242,
            "exit_code": 0, "objective": objective,
            "results": {"objective": objective, "accuracy": 1 - objective},
            "reason": None, "stderr_tail": None, "interruption": None, "requeue": False,
        }
        # Plain writes, not atomic ones: nothing reads these files while they are written.
        (attempts_dir / attempt_file_name(trial["id"], key)).write_text(json.dumps(attempt))


def check_status_counts(env: dict[str, str]) -> None:
    argv = [HPCSWEEP, "status", "-n", NAME, "--json"]
    output = subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout
    counts = json.loads(output)["counts"]
    if counts.get("completed") != COMPLETED or counts.get("new") != TRIALS - COMPLETED:
        raise SystemExit(f"status counts {counts}: expected {COMPLETED} completed and "
                         f"{TRIALS - COMPLETED} new, so the benchmark experiment is wrong")


def import_profile(env: dict[str, str], top: int = 12) -> str:
    """Return the slowest imports of ``hpcsweep --help``, from ``python -X importtime``."""
    argv = [benchlib.PYTHON, "-X", "importtime", HPCSWEEP, "--help"]
    stderr = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stderr
    rows = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and len(match.group(3)) <= 2:  # top-level imports and their direct children
            rows.append((int(match.group(2)), int(match.group(1)), match.group(4)))
    rows.sort(reverse=True)
    lines = [f"{cumulative / 1000:8.1f} ms cumulative {own / 1000:7.1f} ms own  {name}"
             for cumulative, own, name in rows[:top]]
    return "\n".join(lines)


def status_profile(root: Path, top: int = 15) -> str:
    profiler = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()):
        profiler.runcall(hpcsweep_main, ["status", "-n", NAME, "--root", str(root)])
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(top)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="runs of each command (default 10)")
    parser.add_argument("--profile", action="store_true",
                        help="print import times and a profile of status")
    parser.add_argument("--write-doc", action="store_true", help="update BENCHMARKS.md")
    arguments = parser.parse_args()
    info = benchlib.describe_machine()

    with tempfile.TemporaryDirectory(prefix="hpcsweep-bench-") as directory:
        workdir = Path(directory)
        root = workdir / "runs"
        build_experiment(root, workdir)
        env = dict(os.environ, HPCSWEEP_ROOT=str(root))
        check_status_counts(env)
        if arguments.profile:
            print("Slowest imports of `hpcsweep --help`:\n" + import_profile(env) + "\n")
            print("`status` before collect, in process:\n" + status_profile(root))

        before = benchlib.interleaved_wall_s({
            "pass": [benchlib.PYTHON, "-c", "pass"],
            "help": [HPCSWEEP, "--help"],
            "status": [HPCSWEEP, "status", "-n", NAME],
        }, arguments.repeats, env, workdir)
        collect_s = benchlib.wall_s([HPCSWEEP, "collect", "-n", NAME], env, workdir)
        check_status_counts(env)
        if arguments.profile:
            print("`status` after collect, in process:\n" + status_profile(root))
        after = benchlib.interleaved_wall_s({
            "pass": [benchlib.PYTHON, "-c", "pass"],
            "status": [HPCSWEEP, "status", "-n", NAME],
        }, arguments.repeats, env, workdir)

    pass_before = benchlib.median(before["pass"])
    pass_after = benchlib.median(after["pass"])
    help_s = benchlib.median(before["help"])
    status_before = benchlib.median(before["status"])
    status_after = benchlib.median(after["status"])
    rows = [
        benchlib.table_row("`python -c pass` (baseline, first round)", pass_before, pass_before),
        benchlib.table_row("`hpcsweep --help`", help_s, pass_before, "≤ 0.3 s"),
        benchlib.table_row(f"`hpcsweep status -n {NAME}`, before collect", status_before,
                           pass_before, "≤ 0.3 s"),
        benchlib.table_row(f"`hpcsweep collect -n {NAME}` (one run, first merge)", collect_s,
                           pass_before),
        benchlib.table_row("`python -c pass` (baseline, second round)", pass_after, pass_after),
        benchlib.table_row(f"`hpcsweep status -n {NAME}`, after collect", status_after,
                           pass_after, "≤ 0.3 s"),
    ]
    table = benchlib.markdown_table(["command", "median wall time", "ratio to baseline", "target"],
                                    rows)
    text = (f"Run: `python bench/cli_startup.py --repeats {arguments.repeats}`, "
            f"{benchlib.machine_line(info)}. Medians of {arguments.repeats} interleaved runs; "
            f"{TRIALS:,} trials, {COMPLETED:,} with a completed attempt file.\n\n{table}")
    print(text)

    benchlib.append_result("cli_startup", info, {
        "python_pass_s": [pass_before, pass_after], "help_s": help_s,
        "status_before_collect_s": status_before, "collect_s": collect_s,
        "status_after_collect_s": status_after,
    })
    if arguments.write_doc:
        benchlib.update_document("cli_startup", text)


if __name__ == "__main__":
    main()
