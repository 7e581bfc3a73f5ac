"""Benchmark the overhead per trial of the local executor, against a bare loop of the same script.

The trial script imports ``hpcsweep.client``, writes its result and exits.  Each
round runs, in turn:

* the bare loop: the script started ``--trials`` times in a row with
  ``subprocess.run``, its results file set as hpcsweep would set it;
* ``hpcsweep submit --executor local --wait`` of ``--trials`` trials, once with
  each ``--parallelism`` in ``PARALLELISMS``.

The wall time of a sweep counts everything the user waits for: planning,
recording, starting submitit's jobs, each trial, and the last poll of ``--wait``
(``--poll-s 0.2``).  The attempt records of the ``--parallelism 1`` sweep split
its wall time into start-up before the first trial, time inside trials, gaps
between trials, and the end of the wait.

Usage: ``python bench/local_overhead.py [--repeats N] [--trials N] [--write-doc]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

PARALLELISMS = (1, 4)
POLL_S = 0.2
HPCSWEEP = str(Path(benchlib.PYTHON).parent / "hpcsweep")
TRIAL_SCRIPT = "from hpcsweep.client import report_objective\n\nreport_objective(0.5)\n"


def run_bare_loop(workdir: Path, trials: int) -> None:
    results = workdir / "bare" / "results.json"
    results.parent.mkdir(exist_ok=True)
    env = dict(os.environ, HPCSWEEP_RESULTS_PATH=str(results))
    for number in range(trials):
        argv = [benchlib.PYTHON, str(workdir / "trial.py"), "--x", str(number / trials)]
        subprocess.run(argv, env=env, cwd=results.parent, check=True, stdout=subprocess.DEVNULL)


def run_sweep(workdir: Path, name: str, trials: int, parallelism: int) -> dict[str, Any]:
    """Run one local sweep with ``--wait``; return its wall time and the split of that time."""
    env = dict(os.environ, HPCSWEEP_ROOT=str(workdir / "runs"))
    argv = [
        HPCSWEEP, "submit", "-n", name, "--max-trials", str(trials), "--seed", "1",
        "--executor", "local", "--parallelism", str(parallelism), "--time", "5",
        "--wait", "--poll-s", str(POLL_S), "--", benchlib.PYTHON, "trial.py", "--x~uniform(0, 1)",
    ]
    started = time.time()
    wall_s = benchlib.wall_s(argv, env, workdir)
    ended = started + wall_s

    collect = [HPCSWEEP, "collect", "-n", name, "--format", "json"]
    output = subprocess.run(collect, env=env, cwd=workdir, check=True, capture_output=True,
                            text=True).stdout
    rows: list[dict[str, Any]] = json.loads(output)
    statuses = {row["status"] for row in rows}
    if len(rows) != trials or statuses != {"completed"}:
        raise SystemExit(f"sweep {name}: {len(rows)} trials with statuses {statuses}, "
                         f"expected {trials} completed")

    ordered = sorted(rows, key=lambda row: row["start_time"])
    return {
        "wall_s": wall_s,
        "startup_s": ordered[0]["start_time"] - started,
        "inside_s": sum(row["end_time"] - row["start_time"] for row in ordered),
        "gaps_s": sum(later["start_time"] - earlier["end_time"]
                      for earlier, later in itertools.pairwise(ordered)),
        "tail_s": ended - max(row["end_time"] for row in ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--trials", type=int, default=40, help="trials per sweep (default 40)")
    parser.add_argument("--write-doc", action="store_true", help="update BENCHMARKS.md")
    arguments = parser.parse_args()
    info = benchlib.describe_machine()
    trials = arguments.trials

    bare: list[float] = []
    sweeps: dict[int, list[dict[str, Any]]] = {parallelism: [] for parallelism in PARALLELISMS}
    with tempfile.TemporaryDirectory(prefix="hpcsweep-bench-") as directory:
        workdir = Path(directory)
        (workdir / "trial.py").write_text(TRIAL_SCRIPT)
        run_bare_loop(workdir, 2)  # warm the file cache
        for repeat in range(arguments.repeats):
            bare.append(benchlib.timed(run_bare_loop, workdir, trials)[0])
            for parallelism in PARALLELISMS:
                sweeps[parallelism].append(run_sweep(workdir, f"p{parallelism}-{repeat}", trials,
                                                     parallelism))

    bare_s = benchlib.median(bare)
    rows = [[f"bare loop, {trials} runs in a row (baseline)", benchlib.seconds(bare_s),
             benchlib.seconds(bare_s / trials), "", "1.0×"]]
    figures: dict[str, Any] = {"trials": trials, "bare_loop_s": bare_s, "bare_loop_runs_s": bare}
    for parallelism in PARALLELISMS:
        wall_s = benchlib.median([run["wall_s"] for run in sweeps[parallelism]])
        rows.append([
            f"`submit --executor local --parallelism {parallelism} --wait`",
            benchlib.seconds(wall_s), benchlib.seconds(wall_s / trials),
            f"{(wall_s - bare_s) / trials:+.3f} s", benchlib.ratio(wall_s, bare_s),
        ])
        figures[f"sweep_p{parallelism}_s"] = wall_s
        figures[f"sweep_p{parallelism}_runs_s"] = [run["wall_s"] for run in sweeps[parallelism]]
    header = ["run", "median wall time", "per trial", "overhead per trial vs bare loop",
              "ratio to bare loop"]
    table = benchlib.markdown_table(header, rows)

    split = {key: benchlib.median([run[key] for run in sweeps[1]])
             for key in ("wall_s", "startup_s", "inside_s", "gaps_s", "tail_s")}
    figures["split_p1"] = split
    split_text = (
        f"Where the `--parallelism 1` sweep spends its {split['wall_s']:.2f} s (medians, from the "
        f"attempt records): {split['startup_s']:.2f} s from the start of `submit` to the start of "
        f"the first trial; {split['inside_s']:.2f} s inside the {trials} trials, "
        f"{split['inside_s'] / trials:.3f} s each against {bare_s / trials:.3f} s for a run of "
        f"the bare loop; {split['gaps_s']:.2f} s in the gaps between trials; "
        f"{split['tail_s']:.2f} s from the end of the last trial to the exit of `--wait`.\n"
    )
    text = (f"Run: `python bench/local_overhead.py --repeats {arguments.repeats} "
            f"--trials {trials}`, {benchlib.machine_line(info)}. Medians of {arguments.repeats} "
            f"rounds.\n\n{table}\n{split_text}")
    print(text)

    benchlib.append_result("local_overhead", info, figures)
    if arguments.write_doc:
        benchlib.update_document("local_overhead", text)


if __name__ == "__main__":
    main()
