"""End-to-end tests that submit real job arrays to a running Slurm cluster.

They go through the ``hpcsweep`` command line and check the result in the store
and in Slurm itself (``scontrol``, ``squeue``, ``sacct``).  Start the project's
test cluster with ``.ci/start-slurm.sh``: its low ``MaxArraySize`` (25 by default)
makes a sweep of a few dozen trials split into several arrays.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slurm

# Every submission in this file runs on the project's test cluster.
SLURM_OPTIONS = ("--executor", "slurm", "--time", "5")
WAIT_OPTIONS = ("--wait", "--poll-s", "1")

# Writes its parameter as the objective and exits at once.
INSTANT_SCRIPT = """\
import json, os, sys
x = float(sys.argv[sys.argv.index("--x") + 1])
with open(os.environ["HPCSWEEP_RESULTS_PATH"], "w") as handle:
    json.dump({"objective": x}, handle)
"""

# Sleeps the number of seconds given by --sleep-s, then reports an objective.
SLEEPING_SCRIPT = """\
import json, os, sys, time
time.sleep(float(sys.argv[sys.argv.index("--sleep-s") + 1]))
with open(os.environ["HPCSWEEP_RESULTS_PATH"], "w") as handle:
    json.dump({"objective": float(sys.argv[sys.argv.index("--x") + 1])}, handle)
"""

# Fails with a message on stderr for x == 3, completes for every other value.
FAILING_SCRIPT = """\
import json, os, sys
x = int(sys.argv[sys.argv.index("--x") + 1])
if x == 3:
    print("rejecting x=3: out of range", file=sys.stderr)
    sys.exit(1)
with open(os.environ["HPCSWEEP_RESULTS_PATH"], "w") as handle:
    json.dump({"objective": x}, handle)
"""

SBATCH_ERROR = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"


# ----------------------------------------------------------------- helpers


def run_slurm_command(*argv: str) -> str:
    """Run a Slurm client command and return its stdout, failing the test if the command fails."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(argv)} failed: {result.stderr.strip()}"
    return result.stdout


def cluster_max_array_size() -> int:
    config = run_slurm_command("scontrol", "show", "config")
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.MULTILINE)
    assert match, "scontrol show config has no MaxArraySize line"
    return int(match.group(1))


def wait_for(condition: Callable[[], Any], timeout_s: float, description: str) -> Any:
    """Poll ``condition`` every half second until it returns a true value, and return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {description}")
        time.sleep(0.5)


def sacct_states(array_ids: list[str], task_count: int, timeout_s: float = 60) -> dict[str, str]:
    """Return the final state of every array task from ``sacct``, keyed by ids such as ``123_4``.

    Accounting records reach slurmdbd a few seconds after the queue changes, so
    this waits until ``task_count`` tasks are listed and none is pending or running.
    """

    def read() -> dict[str, str] | None:
        output = run_slurm_command(
            "sacct", "--allocations", "--noheader", "--parsable2", "--format=JobID,State",
            "--jobs", ",".join(array_ids),
        )
        states = {}
        for line in output.splitlines():
            job_id, state = line.split("|")
            # A cancelled job shows as 'CANCELLED by 0'.
            states[job_id] = state.split()[0]
        finished = len(states) == task_count and not {"PENDING", "RUNNING", "REQUEUED"} & set(states.values())
        return states if finished else None

    return wait_for(read, timeout_s, f"sacct to list {task_count} finished tasks of arrays {array_ids}")


def submitted_job_ids(stdout: str) -> list[str]:
    """Return the ids on the ``jobs:`` line of ``submit``'s output."""
    lines = [line for line in stdout.splitlines() if line.startswith("jobs:")]
    assert len(lines) == 1, f"expected one 'jobs:' line in {stdout!r}"
    return lines[0].split()[1:]


def collect_rows(cli: Any, name: str) -> list[dict[str, Any]]:
    result = cli("collect", "-n", name, "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def status_counts(cli: Any, name: str) -> dict[str, int]:
    result = cli("status", "-n", name, "--json")
    assert result.exit_code == 0, result.stderr
    counts: dict[str, int] = json.loads(result.stdout)["counts"]
    return counts


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Return the largest number of ``(start, end)`` intervals that share an instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))  # an end before a start at the same time
    running = highest = 0
    for _, change in events:
        running += change
        highest = max(highest, running)
    return highest


@pytest.fixture
def sbatch_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Return a function that puts an ``sbatch`` wrapper first on PATH and returns its call log.

    With ``install(fail_calls=frozenset({2}))`` the second call prints an sbatch
    error and exits 1, and every other call runs the real ``sbatch``.  A call in
    ``lost_calls`` submits with the real ``sbatch`` but then fails, as when the
    submitting process is killed before it records the job id.  The log has
    one line per call: its number and the ``--array`` line of its script.
    """
    real_sbatch = shutil.which("sbatch")
    assert real_sbatch is not None, "sbatch is not on PATH"

    def install(fail_calls: frozenset[int] = frozenset(), lost_calls: frozenset[int] = frozenset()) -> Path:
        directory = tmp_path / "fake-bin"
        directory.mkdir()
        log = tmp_path / "sbatch-calls.log"
        failing = " ".join(str(number) for number in sorted(fail_calls))
        losing = " ".join(str(number) for number in sorted(lost_calls))
        wrapper = directory / "sbatch"
        wrapper.write_text(
            "#!/bin/bash\n"
            f"log='{log}'\n"
            'number=$(( $(cat "$log" 2>/dev/null | wc -l) + 1 ))\n'
            'array=$(grep -h -m1 "^#SBATCH --array" "${@: -1}" 2>/dev/null || echo "no array")\n'
            'echo "$number $array" >> "$log"\n'
            f'if [[ " {failing} " == *" $number "* ]]; then\n'
            f"  echo '{SBATCH_ERROR}' >&2\n"
            "  exit 1\n"
            "fi\n"
            # A lost call queues the job, then fails as if its caller had been killed.
            f'if [[ " {losing} " == *" $number "* ]]; then\n'
            f'  {real_sbatch} "$@" > /dev/null\n'
            "  echo 'sbatch: error: the caller was killed' >&2\n"
            "  exit 1\n"
            "fi\n"
            f'exec {real_sbatch} "$@"\n'
        )
        wrapper.chmod(0o755)
        monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
        return log

    return install


def read_calls(log: Path) -> list[str]:
    """Return the ``--array`` line of each logged sbatch call, in call order."""
    if not log.exists():
        return []
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()]


# ------------------------------------------------------------------- tests


def test_sweep_split_into_arrays(cli: Any, script: Any, sbatch_calls: Callable[..., Path]) -> None:
    max_array_size = cluster_max_array_size()
    if max_array_size > 200:
        pytest.skip(f"MaxArraySize is {max_array_size}; start the test cluster with .ci/start-slurm.sh (default 25)")
    trial_count = 2 * max_array_size + 3
    expected_arrays = math.ceil(trial_count / max_array_size)
    path = script(INSTANT_SCRIPT)
    log = sbatch_calls()

    result = cli("submit", "-n", "split", "--max-trials", str(trial_count), "--seed", "1",
                 *SLURM_OPTIONS, *WAIT_OPTIONS, "--", "python", str(path), "--x~uniform(0, 1)")

    assert result.exit_code == 0, result.stderr
    array_ids = submitted_job_ids(result.stdout)
    assert len(array_ids) == expected_arrays
    assert len(set(array_ids)) == expected_arrays

    # One sbatch call per array, each within the limit: 0-24, 0-24, 0-2 for 25.
    calls = read_calls(log)
    assert len(calls) == expected_arrays
    sizes = [min(max_array_size, trial_count - start) for start in range(0, trial_count, max_array_size)]
    for call, size in zip(calls, sizes):
        assert re.fullmatch(rf"#SBATCH --array=0-{size - 1}%\d+", call), call

    counts = status_counts(cli, "split")
    assert counts["completed"] == trial_count

    # Each trial ran in the array task of its position: chunk k, index position - k * size.
    rows = collect_rows(cli, "split")
    for row in rows:
        chunk, index = divmod(row["number"], max_array_size)
        assert row["job_id"] == f"{array_ids[chunk]}_{index}"

    states = sacct_states(array_ids, trial_count)
    assert set(states.values()) == {"COMPLETED"}
    for array_id, size in zip(array_ids, sizes):
        assert sorted(int(job.split("_")[1]) for job in states if job.startswith(f"{array_id}_")) == list(range(size))


def test_throttled_array(cli: Any, script: Any) -> None:
    trial_count = 6
    path = script(SLEEPING_SCRIPT)

    result = cli("submit", "-n", "throttled", "--max-trials", str(trial_count), "--seed", "2",
                 "--parallelism", "2", *SLURM_OPTIONS, *WAIT_OPTIONS,
                 "--", "python", str(path), "--sleep-s", "3", "--x~uniform(0, 1)")

    assert result.exit_code == 0, result.stderr
    (array_id,) = submitted_job_ids(result.stdout)

    submission = cli.root / "throttled" / "submitit" / array_id / f"{array_id}_submission.sh"  # type: ignore[attr-defined]
    assert f"#SBATCH --array=0-{trial_count - 1}%2\n" in submission.read_text()
    record = run_slurm_command("scontrol", "show", "job", array_id)
    assert set(re.findall(r"ArrayTaskThrottle=(\d+)", record)) == {"2"}

    rows = collect_rows(cli, "throttled")
    assert [row["status"] for row in rows] == ["completed"] * trial_count
    intervals = [(row["start_time"], row["end_time"]) for row in rows]
    # At most two at once, and two did run together: the throttle is 2, not 1.
    assert max_overlap(intervals) == 2


def test_broken_trial_beside_completed(cli: Any, script: Any) -> None:
    path = script(FAILING_SCRIPT)

    result = cli("submit", "-n", "mixed", "--algorithm", "grid", "--max-trials", "4",
                 *SLURM_OPTIONS, *WAIT_OPTIONS, "--", "python", str(path), "--x~choices([1, 2, 3, 4])")

    assert result.exit_code == 0, result.stderr
    (array_id,) = submitted_job_ids(result.stdout)

    status = cli("status", "-n", "mixed", "--json", "--all")
    assert status.exit_code == 0, status.stderr
    by_status = {trial["status"]: trial for trial in json.loads(status.stdout)["trials"]}
    assert set(by_status) == {"completed", "broken"}
    assert by_status["broken"]["reason"] == "script exited with code 1"

    rows = {row["params"]["/x"]: row for row in collect_rows(cli, "mixed")}
    assert sorted(rows) == [1, 2, 3, 4]
    broken = rows.pop(3)
    assert broken["status"] == "broken"
    assert broken["exit_code"] == 1
    assert "rejecting x=3: out of range" in broken["stderr_tail"]
    for row in rows.values():
        assert row["status"] == "completed"
        assert row["exit_code"] == 0
        assert row["objective"] == row["params"]["/x"]

    # Slurm's record agrees with the store: the task of x=3 failed, the others completed.
    states = sacct_states([array_id], 4)
    assert states.pop(broken["job_id"]) == "FAILED"
    assert set(states.values()) == {"COMPLETED"}


def test_cancel_running_sweep(cli: Any, script: Any) -> None:
    trial_count = 3
    path = script(SLEEPING_SCRIPT)

    result = cli("submit", "-n", "doomed", "--max-trials", str(trial_count), "--seed", "3", *SLURM_OPTIONS,
                 "--", "python", str(path), "--sleep-s", "60", "--x~uniform(0, 1)")
    assert result.exit_code == 0, result.stderr
    (array_id,) = submitted_job_ids(result.stdout)
    wait_for(lambda: status_counts(cli, "doomed")["running"] == trial_count, 60, "every trial to run")

    cancel = cli("cancel", "-n", "doomed")

    assert cancel.exit_code == 0, cancel.stderr
    assert f"cancelled 1 jobs of 'doomed': {array_id}" in cancel.stderr
    wait_for(lambda: run_slurm_command("squeue", "--noheader", "--jobs", array_id).strip() == "",
             30, f"array {array_id} to leave squeue")
    wait_for(lambda: status_counts(cli, "doomed")["running"] == 0, 30, "no trial to be running")
    rows = collect_rows(cli, "doomed")
    assert len(rows) == trial_count
    for row in rows:
        assert row["status"] in ("interrupted", "broken"), row
        assert row["objective"] is None
        assert row["end_time"] is not None
        # The script gets SIGTERM from scancel, directly or forwarded by its array task.
        assert "SIGTERM" in row["reason"], row["reason"]
    assert set(sacct_states([array_id], trial_count).values()) == {"CANCELLED"}


def test_sbatch_failure_reported(cli: Any, script: Any, sbatch_calls: Callable[..., Path]) -> None:
    path = script(INSTANT_SCRIPT)
    log = sbatch_calls(fail_calls=frozenset({1}))

    result = cli("submit", "-n", "rejected", "--max-trials", "3", *SLURM_OPTIONS,
                 "--", "python", str(path), "--x~uniform(0, 1)")

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: sbatch failed for array 1 of 1")
    assert SBATCH_ERROR in lines[0]
    assert len(read_calls(log)) == 1


def test_resume_after_partial_submission(cli: Any, script: Any, sbatch_calls: Callable[..., Path]) -> None:
    max_array_size = cluster_max_array_size()
    if max_array_size > 200:
        pytest.skip(f"MaxArraySize is {max_array_size}; start the test cluster with .ci/start-slurm.sh (default 25)")
    trial_count = max_array_size + 2
    path = script(INSTANT_SCRIPT)
    log = sbatch_calls(fail_calls=frozenset({2}))

    result = cli("submit", "-n", "partial", "--max-trials", str(trial_count), "--seed", "4", *SLURM_OPTIONS,
                 "--", "python", str(path), "--x~uniform(0, 1)")

    assert result.exit_code == 1
    assert "jobs:" not in result.stdout
    first_array = json.loads((cli.root / "partial" / "batches" / "b0001.json").read_text())[  # type: ignore[attr-defined]
        "chunks"][0]["job_id"]
    assert first_array
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: sbatch failed for array 2 of 2")
    assert SBATCH_ERROR in error
    assert f"1 arrays were submitted before it ({first_array})" in error
    assert "hpcsweep submit -n partial --resume" in error

    resume = cli("submit", "-n", "partial", "--resume")

    assert resume.exit_code == 0, resume.stderr
    (second_array,) = submitted_job_ids(resume.stdout)
    assert second_array != first_array
    # Three calls in all: the first array, the failed second, and its resubmission with 2 tasks.
    calls = read_calls(log)
    assert len(calls) == 3
    assert re.fullmatch(r"#SBATCH --array=0-1%\d+", calls[2]), calls[2]
    wait_for(lambda: status_counts(cli, "partial")["completed"] == trial_count, 90, "every trial to complete")
    states = sacct_states([first_array, second_array], trial_count)
    assert set(states.values()) == {"COMPLETED"}

    again = cli("submit", "-n", "partial", "--resume")
    assert again.exit_code == 0, again.stderr
    assert "nothing to resume" in again.stderr
    assert len(read_calls(log)) == 3


def test_resume_replaces_array_queued_unrecorded(cli: Any, script: Any, sbatch_calls: Callable[..., Path]) -> None:
    path = script(INSTANT_SCRIPT)
    log = sbatch_calls(lost_calls=frozenset({1}))

    result = cli("submit", "-n", "lost-id", "--max-trials", "3", "--seed", "4", *SLURM_OPTIONS,
                 "--", "python", str(path), "--x~uniform(0, 1)")
    assert result.exit_code == 1
    assert "jobs:" not in result.stdout

    resume = cli("submit", "-n", "lost-id", "--resume")
    assert resume.exit_code == 0, resume.stderr
    assert "queued for array 1 of batch b0001 by a submit that was interrupted" in resume.stderr
    assert len(read_calls(log)) == 2
    (array_id,) = submitted_job_ids(resume.stdout)
    wait_for(lambda: status_counts(cli, "lost-id")["completed"] == 3, 90, "every trial to complete")
    rows = collect_rows(cli, "lost-id")
    assert {row["job_id"].split("_")[0] for row in rows} == {array_id}
    assert all(row["attempts"] == 1 for row in rows)
