"""Benchmark planning, recording and submitting a random sweep of 10,000 trials.

Measures, in one run:

* ``plan_submission`` and ``record_plan`` in this process (imports excluded),
  against writing the same 10,000 trial records once with ``json.dumps`` and
  ``fsync``, the least that recording must do;
* ``hpcsweep submit --dry-run`` as a subprocess, against ``python -c pass``;
* ``hpcsweep submit`` with a fake ``sbatch`` on PATH that records its calls and
  prints ``Submitted batch job N``, and a fake ``scontrol show config`` that
  reports ``MaxArraySize = 1001``: the number of ``sbatch`` calls, the array of
  each, and the wall time, against creating 10,000 folders with one small pickle
  each in this process, the file layout that submitit writes for the tasks.

Usage: ``python bench/plan_10k.py [--repeats N] [--write-doc]``.  Each run is
appended to bench/results.jsonl, and ``--write-doc`` also replaces this
benchmark's section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import benchlib

from hpcsweep.planner import Plan, SubmitRequest, plan_submission, record_plan
from hpcsweep.store import Store
from hpcsweep.submission import ExecutorOptions

TRIALS = 10_000
MAX_ARRAY_SIZE = 1001
PRIORS = [
    "--lr~loguniform(1e-5, 1.0)",
    "--dropout~uniform(0, 0.5)",
    "--optimizer~choices(['sgd', 'adam', 'rmsprop'])",
]
HPCSWEEP = str(Path(benchlib.PYTHON).parent / "hpcsweep")
TRIAL_SCRIPT = "from hpcsweep.client import report_objective\n\nreport_objective(0.5)\n"

FAKE_SBATCH = """\
#!/bin/sh
# Record the call and the array line of the submitted script, then print what sbatch prints.
log="$(dirname "$0")/sbatch.log"
echo "$* $(grep -- '--array' "$1")" >> "$log"
echo "Submitted batch job $((5000 + $(wc -l < "$log")))"
"""
FAKE_SCONTROL = f"""\
#!/bin/sh
echo "MaxArraySize            = {MAX_ARRAY_SIZE}"
"""


def record_locked(store: Store, plan: Plan) -> Any:
    name = plan.experiment["name"]
    store.experiment_dir(name).mkdir(parents=True, exist_ok=True)
    with store.lock(name):
        return record_plan(store, plan)


def write_json_fsync(path: Path, trials: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({str(trial["number"] + 1): trial for trial in trials}))
        handle.flush()
        os.fsync(handle.fileno())


def write_task_files(directory: Path, count: int) -> None:
    """Create ``count`` folders with one small pickle each, as submitit lays out array tasks."""
    for index in range(count):
        folder = directory / f"5000_{index}"
        folder.mkdir(parents=True)
        with open(folder / f"5000_{index}_submitted.pkl", "wb") as handle:
            pickle.dump({"args": ("/experiment", "b0001", index)}, handle)


def measure_in_process(workdir: Path, repeats: int) -> dict[str, list[float]]:
    store = Store(workdir / "runs-in-process")
    times: dict[str, list[float]] = {"plan": [], "record": [], "json_baseline": []}
    for repeat in range(repeats):
        request = SubmitRequest(
            name=f"plan{repeat}", command=[benchlib.PYTHON, str(workdir / "trial.py"), *PRIORS],
            max_trials=TRIALS, seed=repeat, executor=ExecutorOptions(executor="local"), cwd=workdir,
        )
        plan_s, plan = benchlib.timed(plan_submission, store, request)
        if len(plan.new_trials) != TRIALS:
            raise SystemExit(f"planned {len(plan.new_trials)} trials, expected {TRIALS}")
        record_s, _ = benchlib.timed(record_locked, store, plan)
        baseline_path = workdir / f"baseline{repeat}.json"
        baseline_s, _ = benchlib.timed(write_json_fsync, baseline_path, plan.all_trials)

        times["plan"].append(plan_s)
        times["record"].append(record_s)
        times["json_baseline"].append(baseline_s)
    return times


def write_fake_tools(directory: Path) -> None:
    directory.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("scontrol", FAKE_SCONTROL)):
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)


def measure_submit(
    workdir: Path, repeats: int
) -> tuple[dict[str, list[float]], list[list[str]], int]:
    """Time the dry run and the submission; return the times, sbatch calls and task pickles."""
    fake_bin = workdir / "bin"
    write_fake_tools(fake_bin)
    env = dict(os.environ, HPCSWEEP_ROOT=str(workdir / "runs"),
               PATH=f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    command = ["--", benchlib.PYTHON, "trial.py", *PRIORS]
    base = [HPCSWEEP, "submit", "--max-trials", str(TRIALS), "--seed", "1"]

    dry_run = benchlib.interleaved_wall_s(
        {"pass": [benchlib.PYTHON, "-c", "pass"],
         "dry_run": [*base, "-n", "dry", "--executor", "local", "--dry-run", *command]},
        repeats, env, workdir,
    )
    times = {"python_pass": dry_run["pass"], "dry_run": dry_run["dry_run"], "submit": [],
             "files_baseline": []}

    calls: list[list[str]] = []
    pickles = 0
    log = fake_bin / "sbatch.log"
    for repeat in range(repeats):
        log.unlink(missing_ok=True)
        name = f"submit{repeat}"
        argv = [*base, "-n", name, "--executor", "slurm", "--parallelism", "100", *command]
        times["submit"].append(benchlib.wall_s(argv, env, workdir))
        files_s, _ = benchlib.timed(write_task_files, workdir / f"files{repeat}", TRIALS)
        times["files_baseline"].append(files_s)
        calls.append(log.read_text().splitlines())
        pickles = sum(1 for _ in (workdir / "runs" / name / "submitit").rglob("*_submitted.pkl"))
    return times, calls, pickles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each measurement (default 5)")
    parser.add_argument("--write-doc", action="store_true", help="update BENCHMARKS.md")
    arguments = parser.parse_args()
    info = benchlib.describe_machine()

    with tempfile.TemporaryDirectory(prefix="hpcsweep-bench-") as directory:
        workdir = Path(directory)
        (workdir / "trial.py").write_text(TRIAL_SCRIPT)
        in_process = measure_in_process(workdir, arguments.repeats)
        subprocess_times, calls, pickles = measure_submit(workdir, arguments.repeats)

    plan_s = benchlib.median(in_process["plan"])
    record_s = benchlib.median(in_process["record"])
    total_s = benchlib.median([p + r for p, r in zip(in_process["plan"], in_process["record"])])
    json_s = benchlib.median(in_process["json_baseline"])
    pass_s = benchlib.median(subprocess_times["python_pass"])
    dry_s = benchlib.median(subprocess_times["dry_run"])
    submit_s = benchlib.median(subprocess_times["submit"])
    files_s = benchlib.median(subprocess_times["files_baseline"])
    arrays = [re.search(r"--array=(\S+)", line) for line in calls[-1]]
    array_list = ", ".join(match.group(1) if match else "?" for match in arrays)
    call_counts = sorted({len(run) for run in calls})

    rows = [
        benchlib.table_row("`plan_submission`, in process", plan_s, json_s),
        benchlib.table_row("`record_plan`, in process", record_s, json_s),
        benchlib.table_row("plan + record", total_s, json_s, "≤ 2 s"),
        benchlib.table_row("baseline: `json.dumps`, write and fsync of the trials", json_s, json_s),
        benchlib.table_row("`hpcsweep submit --dry-run`", dry_s, pass_s, "≤ 2 s"),
        benchlib.table_row("baseline: `python -c pass`", pass_s, pass_s),
        benchlib.table_row("`hpcsweep submit`, fake sbatch", submit_s, files_s),
        benchlib.table_row("baseline: 10,000 folders with one pickle each", files_s, files_s),
    ]
    header = ["measurement (10,000 trials)", "median wall time", "ratio to baseline", "target"]
    table = benchlib.markdown_table(header, rows)
    sbatch_text = (
        f"`sbatch` calls per submission of {TRIALS:,} trials with MaxArraySize = {MAX_ARRAY_SIZE}: "
        f"{', '.join(map(str, call_counts))} (expected 10), one per array: {array_list}. "
        f"submitit wrote {pickles:,} task pickles.\n"
    )
    text = (
        f"Run: `python bench/plan_10k.py --repeats {arguments.repeats}`, "
        f"{benchlib.machine_line(info)}. Medians of {arguments.repeats} runs.\n\n"
        f"{table}\n{sbatch_text}"
    )
    print(text)

    benchlib.append_result("plan_10k", info, {
        "plan_s": plan_s, "record_s": record_s, "plan_record_s": total_s, "json_baseline_s": json_s,
        "dry_run_s": dry_s, "submit_fake_sbatch_s": submit_s, "python_pass_s": pass_s,
        "task_files_baseline_s": files_s,
        "sbatch_calls": call_counts, "arrays": array_list, "task_pickles": pickles,
    })
    if arguments.write_doc:
        benchlib.update_document("plan_10k", text)


if __name__ == "__main__":
    main()
