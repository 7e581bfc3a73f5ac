"""Cost of reading the git state at submission, on a repository with many tracked files.

Times ``plan_submission`` (which reads the git state of the script's repository)
for a script inside a repository of ``--files`` tracked files, clean and with one
edited and one untracked file, against the same script outside any repository,
in the same run.  Also times the per-trial check of the array task
(``read_vcs_state``), which runs once per trial unless ``--code-change ignore``.

Usage: python bench/vcs_overhead.py [--files 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hpcsweep.planner import SubmitRequest, plan_submission
from hpcsweep.store import Store
from hpcsweep.vcs import read_vcs_state


def make_repository(path: Path, files: int) -> Path:
    path.mkdir(parents=True)
    for index in range(files):
        directory = path / f"pkg{index // 500:03d}"
        directory.mkdir(exist_ok=True)
        (directory / f"module{index:05d}.py").write_text(f"VALUE = {index}\n")
    script = path / "train.py"
    script.write_text("print('train')\n")
    environment = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
                   "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org", "PATH": "/usr/bin:/bin"}
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "files"]):
        subprocess.run(command, cwd=path, check=True, env=environment)
    return script


def time_plan(store: Store, script: Path, repeat: int) -> float:
    timings = []
    for index in range(repeat):
        request = SubmitRequest(name=f"bench{index}", command=["python", str(script), "--x~uniform(0, 1)"],
                                max_trials=10, seed=1, cwd=script.parent)
        started = time.perf_counter()
        plan_submission(store, request)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def time_read(script: Path, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        read_vcs_state(script)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hpcsweep-vcs-"))
    store = Store(work / "runs")
    plain = work / "plain" / "train.py"
    plain.parent.mkdir()
    plain.write_text("print('train')\n")
    started = time.perf_counter()
    script = make_repository(work / "repo", options.files)
    setup_s = time.perf_counter() - started

    time_read(script, 1)  # warm the import of gitpython and the file-system cache
    baseline_s = time_plan(store, plain, options.repeat)
    clean_s = time_plan(store, script, options.repeat)
    clean_read_s = time_read(script, options.repeat)
    (script.parent / "pkg000" / "module00000.py").write_text("VALUE = -1\n")
    (script.parent / "untracked.txt").write_text("new\n")
    dirty_s = time_plan(store, script, options.repeat)
    dirty_read_s = time_read(script, options.repeat)

    report = {
        "tracked_files": options.files + 1,
        "repository_setup_s": round(setup_s, 1),
        "plan_outside_repository_s": round(baseline_s, 3),
        "plan_clean_repository_s": round(clean_s, 3),
        "plan_dirty_repository_s": round(dirty_s, 3),
        "git_overhead_clean_s": round(clean_s - baseline_s, 3),
        "git_overhead_dirty_s": round(dirty_s - baseline_s, 3),
        "per_trial_check_clean_s": round(clean_read_s, 3),
        "per_trial_check_dirty_s": round(dirty_read_s, 3),
    }
    print(json.dumps(report, indent=2))
    return 0 if max(report["git_overhead_clean_s"], report["git_overhead_dirty_s"]) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
