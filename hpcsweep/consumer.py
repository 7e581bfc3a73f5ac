"""The array task: a thin consumer that runs one trial (or, locally, a queue of trials).

It receives only the experiment directory, the batch id and its position in the
batch, and reads the rest from the store.  It rebuilds the command-line parser from
the saved state and runs the user's script as a black box in the trial's working
directory.  It writes only the files of its own trial: its attempt file in
``attempts/`` and the files in the working directory.

An interrupted trial comes back as the same trial (same id, working directory and
configuration file).  On Slurm the task requeues itself with ``scontrol requeue``,
and locally the job runs the trial again.  Each start is a new attempt, numbered in
``HPCSWEEP_ATTEMPT``.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcsweep.atomic import write_json_atomic, write_text_atomic
from hpcsweep.cmdline import CommandLine
from hpcsweep.errors import TrialFailedError
from hpcsweep.interrupts import (
    CANCELLED, INTERRUPT_CODE, TIMEOUT, budget_of, classify_stop_signal, requeue_slurm_task,
)
from hpcsweep.process import STOP_SIGNALS, StopFlag, Supervision, read_tail, run_supervised
from hpcsweep.results import InvalidResultsError, read_results
from hpcsweep.snapshot import redirect_token
from hpcsweep.store import attempt_file_name, read_json
from hpcsweep.trials import BROKEN, COMPLETED, INTERRUPTED, RUNNING

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
SKIPPED = "skipped"


@dataclass
class JobIds:
    job_id: str | None
    array_job_id: str | None
    array_task_id: str | None


def _job_ids() -> JobIds:
    if os.environ.get("SLURM_JOB_ID"):
        array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
        array_task = os.environ.get("SLURM_ARRAY_TASK_ID")
        job_id = f"{array_job}_{array_task}" if array_job and array_task else os.environ["SLURM_JOB_ID"]
        return JobIds(job_id, array_job, array_task)
    return JobIds(os.environ.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getppid()), None, None)


def run_array_task(experiment_dir: str, batch_id: str, start: int, step: int = 0) -> dict[str, int]:
    """Run the trial at position ``start`` of the batch; with ``step``, work through a queue.

    With ``step`` (local jobs), the task claims positions ``start``, ``start + step``,
    ... and then any position that no other job has claimed, so trials of a job that
    died are taken over.  Returns the count of trials by status; raises
    :class:`TrialFailedError` at the end if a trial did not complete, so that the
    scheduler's record of the task agrees with the store.
    """
    directory = Path(experiment_dir)
    batch = read_json(directory / "batches" / f"{batch_id}.json")
    if step > 0:
        return _run_lane(directory, batch_id, len(batch["trials"]), start, step)

    trial = batch["trials"][start]
    experiment = read_json(directory / "experiment.json")["experiment"]["1"]
    # A batch submitted by requeue may carry its own time limit.
    experiment["settings"] = {**experiment["settings"], **batch.get("settings", {})}
    runner = TrialRunner(directory, experiment)
    runner.stop.install()
    try:
        status = runner.run(trial)
        if status == "requeued":
            # Slurm stops and restarts this task; wait to be stopped.
            time.sleep(float(runner.settings.get("grace_s", 60)) + 30)
    finally:
        runner.stop.restore()
    if status not in (COMPLETED, SKIPPED, "requeued"):
        raise TrialFailedError(f"trial {trial['id']} did not complete: {status}")
    return {status: 1}


def _run_lane(directory: Path, batch_id: str, count: int, start: int, step: int) -> dict[str, int]:
    """Run claimed trials one after another, each in its own consumer process.

    A consumer that dies (killed, out of memory) takes only its own trial with it:
    the lane goes on with the next one, and the dead trial shows as lost.
    """
    stop = StopFlag()
    stop.install()
    current: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, frame: Any) -> None:
        stop.signum = stop.signum or signum
        for child in current:
            child.send_signal(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, forward)
    counts: dict[str, int] = {}
    try:
        for position in _positions(directory, batch_id, count, start, step):
            if stop.signum is not None:
                break
            child = subprocess.Popen(
                [sys.executable, "-m", "hpcsweep.consumer", str(directory), batch_id, str(position)]
            )
            current[:] = [child]
            code = child.wait()
            current.clear()
            key = "ok" if code == 0 else f"exit {code}"
            counts[key] = counts.get(key, 0) + 1
    finally:
        stop.restore()
    failed = sum(value for key, value in counts.items() if key != "ok")
    if failed:
        raise TrialFailedError(f"{failed} trials of this local job did not complete")
    return counts


def _positions(directory: Path, batch_id: str, count: int, start: int, step: int) -> Any:
    if step <= 0:
        yield start
        return
    claims = directory / "claims" / batch_id
    claims.mkdir(parents=True, exist_ok=True)
    order = list(range(start, count, step)) + [p for p in range(count) if (p - start) % step != 0]
    for position in order:
        if _claim(claims / str(position)):
            yield position


def _claim(path: Path) -> bool:
    """Create ``path`` exclusively; each local position is run by the one job that claims it."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError as err:
        if err.errno == errno.EEXIST:
            return False
        raise
    os.write(descriptor, f"{socket.gethostname()} {os.getpid()}\n".encode())
    os.close(descriptor)
    return True


class TrialRunner:
    """Runs the trials of one experiment, one at a time, within one array task."""

    def __init__(self, experiment_dir: Path, experiment: dict[str, Any]) -> None:
        self.experiment_dir = experiment_dir
        self.attempts_dir = experiment_dir / "attempts"
        self.experiment = experiment
        self.command = CommandLine.from_json(experiment["parser_state"])
        self.settings = experiment["settings"]
        self.ids = _job_ids()
        self.host = socket.gethostname()
        self.stop = StopFlag()
        self.on_slurm = bool(os.environ.get("SLURM_JOB_ID"))
        snapshot = experiment.get("snapshot")
        if snapshot:
            # Queued trials run the code copied at submission, not the live repository.
            self.command.tokens = [redirect_token(token, snapshot) if isinstance(token, str) else token
                                   for token in self.command.tokens]

    def run(self, trial: dict[str, Any]) -> str:
        """Run ``trial`` until it ends or is requeued; return its final status for this task."""
        while True:
            previous = self._previous_attempts(trial["id"])
            if any(attempt.get("status") == COMPLETED for attempt in previous):
                logger.info("trial %s is already completed; nothing to do", trial["id"])
                return SKIPPED
            attempt = self._run_attempt(trial, len(previous) + 1, previous)
            if not attempt.get("requeue"):
                return str(attempt["status"])
            if self.on_slurm:
                return "requeued"
            # Locally the same job runs the trial again as its next attempt.
            self.stop.signum = None

    def _previous_attempts(self, trial_id: str) -> list[dict[str, Any]]:
        attempts = []
        for path in self.attempts_dir.glob(f"{trial_id}.*.json"):
            try:
                attempts.append(read_json(path))
            except (OSError, ValueError):
                logger.warning("skipping unreadable attempt file %s", path)
        return attempts

    # --------------------------------------------------------------- attempt

    def _run_attempt(self, trial: dict[str, Any], number: int, previous: list[dict[str, Any]]) -> dict[str, Any]:
        trial_id = trial["id"]
        working_dir = Path(trial["working_dir"])
        working_dir.mkdir(parents=True, exist_ok=True)
        self.attempts_dir.mkdir(exist_ok=True)
        key = f"{time.time_ns()}-{os.getpid()}"
        attempt_path = self.attempts_dir / attempt_file_name(trial_id, key)
        attempt: dict[str, Any] = {
            "trial": trial_id, "key": key, "status": RUNNING, "attempt": number,
            "start_time": time.time(), "end_time": None, "heartbeat_time": time.time(),
            "job_id": self.ids.job_id, "array_job_id": self.ids.array_job_id,
            "array_task_id": self.ids.array_task_id, "host": self.host, "pid": os.getpid(),
            "exit_code": None, "objective": None, "results": None, "reason": None,
            "stderr_tail": None, "interruption": None, "requeue": False,
            "vcs": None, "code_changed": None,
        }
        write_json_atomic(attempt_path, attempt)
        logger.info("trial %s attempt %d starting in %s (job %s)", trial_id, number, working_dir, self.ids.job_id)

        try:
            outcome = self._check_code(attempt)
            if outcome is None:
                outcome = self._execute(trial, number, working_dir, attempt_path)
        except Exception as err:  # record the failure in the store, then fail the task
            logger.exception("trial %s failed inside hpcsweep", trial_id)
            outcome = {"status": BROKEN, "reason": f"hpcsweep could not run the trial: {err}"}
        attempt.update(outcome)
        if attempt["status"] == INTERRUPTED:
            self._decide_requeue(attempt, previous)
        attempt["end_time"] = time.time()
        write_json_atomic(attempt_path, attempt)
        logger.info(
            "trial %s attempt %d ended %s (exit code %s)%s", trial_id, number, attempt["status"],
            attempt["exit_code"], f": {attempt['reason']}" if attempt.get("reason") else "",
        )
        if attempt["requeue"] and self.on_slurm:
            error = requeue_slurm_task()
            if error is not None:
                logger.error("trial %s: scontrol requeue failed: %s; run 'hpcsweep requeue'", trial_id, error)
                attempt["requeue"] = False
                attempt["reason"] += f"; requeue failed: {error}"
                write_json_atomic(attempt_path, attempt)
        return attempt

    def _check_code(self, attempt: dict[str, Any]) -> dict[str, Any] | None:
        """Compare the script's code with the code at submission.

        Records the state in ``attempt``; returns the outcome of a trial that must not
        run (``--code-change fail``), else None.  Each trial reads the state anew,
        because one job may run trials hours apart.
        """
        mode = self.settings.get("code_change", "warn")
        submitted = self.experiment.get("vcs") or {}
        if mode == "ignore" or self.experiment.get("snapshot") or submitted.get("type") != "git":
            return None
        from hpcsweep.vcs import read_vcs_state
        from hpcsweep.versioning import code_differs, describe_vcs

        script = self.experiment.get("script")
        current = read_vcs_state(Path(script) if script else Path(self.experiment["submit_dir"]),
                                 ignore=[self.experiment_dir.parent])
        attempt["vcs"] = {key: current.get(key) for key in ("commit", "branch", "dirty", "diff_sha256")}
        attempt["code_changed"] = code_differs(submitted, current)
        if not attempt["code_changed"]:
            return None
        change = f"code changed since submission: {describe_vcs(submitted)} then, {describe_vcs(current)} now"
        if mode == "fail":
            return {"status": BROKEN, "reason": f"{change}; not run (--code-change fail)"}
        logger.warning("trial %s: %s; running it anyway (--code-change warn)", attempt["trial"], change)
        return None

    def _decide_requeue(self, attempt: dict[str, Any], previous: list[dict[str, Any]]) -> None:
        budget = budget_of(attempt["interruption"])
        if budget is None:
            return
        used = sum(budget_of(a.get("interruption") or "") == budget for a in previous)
        limit = int(self.settings.get("max_requeues" if budget == "requeues" else "max_preemptions", 3))
        if used < limit:
            attempt["requeue"] = True
            attempt["reason"] += f"; requeued ({used + 1} of {limit} {budget})"
        else:
            option = "--max-requeues" if budget == "requeues" else "--max-preemptions"
            attempt["reason"] += f"; not requeued: the limit of {limit} {budget} was reached ({option})"

    def _execute(self, trial: dict[str, Any], number: int, working_dir: Path, attempt_path: Path) -> dict[str, Any]:
        params = trial["params"]
        placeholders = {
            "{trial.id}": trial["id"],
            "{trial.working_dir}": str(working_dir),
            "{exp.name}": self.experiment["name"],
            "{exp.version}": str(self.experiment["version"]),
            "{exp.working_dir}": str(self.experiment_dir),
        }
        config_path = None
        config_text = self.command.render_config(params)
        if config_text is not None:
            config_path = working_dir / self.command.template_filename()
            write_text_atomic(config_path, config_text)
        argv = self.command.render(params, placeholders, str(config_path) if config_path else None)

        results_path = working_dir / RESULTS_FILE
        results_path.unlink(missing_ok=True)  # a result must come from this attempt
        environment = self._environment(trial, number, working_dir, results_path)
        settings = self.settings
        supervision = Supervision(
            heartbeat_path=attempt_path,
            heartbeat_s=float(settings.get("heartbeat_s", 60)),
            forward_signal=int(settings.get("forward_signal", signal.SIGTERM)),
            grace_s=float(settings.get("grace_s", 60)),
            time_limit_s=settings.get("trial_timeout_s"),
            warning_s=float(settings.get("signal_delay_s", 90)),
        )
        stderr_path = working_dir / STDERR_FILE
        process, stderr_offset = run_supervised(
            argv, working_dir, environment, working_dir / STDOUT_FILE, stderr_path, supervision, self.stop
        )
        exit_code = process.exit_code
        outcome: dict[str, Any] = {"exit_code": exit_code}
        interrupt_code = int(settings.get("interrupt_code", 130))

        results = None
        results_error = ""
        if exit_code == 0:
            try:
                results = read_results(results_path)
            except InvalidResultsError as err:
                results_error = str(err)

        if results is not None:
            # A valid result counts even if a stop signal arrived as the script finished.
            outcome.update(status=COMPLETED, objective=results.objective, objective_name=results.objective_name,
                           results=results.results)
        elif process.local_timeout:
            outcome.update(status=INTERRUPTED, interruption=TIMEOUT,
                           reason=f"time limit of {settings['time_min']} min reached")
        elif process.stop_signal is not None:
            kind = classify_stop_signal(process.stop_signal)
            name = signal.Signals(process.stop_signal).name
            outcome.update(status=INTERRUPTED, interruption=kind,
                           reason=f"cancelled ({name})" if kind == CANCELLED else f"{kind} ({name})")
        elif exit_code == interrupt_code:
            outcome.update(status=INTERRUPTED, interruption=INTERRUPT_CODE,
                           reason=f"script exited with the interrupt code {interrupt_code}")
        elif exit_code != 0:
            reason = (f"script killed by {signal.Signals(-exit_code).name}" if exit_code < 0
                      else f"script exited with code {exit_code}")
            outcome.update(status=BROKEN, reason=reason)
        else:
            outcome.update(status=BROKEN, reason=f"exit code 0 but {results_error}")
        if process.killed_after_grace:
            outcome["reason"] = f"{outcome.get('reason')}; killed after a grace of {supervision.grace_s:g} s"
        if outcome["status"] != COMPLETED:
            outcome["stderr_tail"] = read_tail(stderr_path, stderr_offset)
        return outcome

    def _environment(self, trial: dict[str, Any], number: int, working_dir: Path,
                     results_path: Path) -> dict[str, str]:
        values = {
            "EXPERIMENT_ID": self.experiment["id"],
            "EXPERIMENT_NAME": self.experiment["name"],
            "EXPERIMENT_VERSION": str(self.experiment["version"]),
            "TRIAL_ID": trial["id"],
            "WORKING_DIR": str(working_dir),
            "RESULTS_PATH": str(results_path),
            "INTERRUPT_CODE": str(self.settings.get("interrupt_code", 130)),
        }
        environment = dict(os.environ)
        for key, value in values.items():
            environment[f"HPCSWEEP_{key}"] = value
            environment[f"ORION_{key}"] = value
        environment["HPCSWEEP_SUBMIT_DIR"] = self.experiment.get("submit_dir", "")
        environment["HPCSWEEP_ATTEMPT"] = str(number)
        return environment


def main(argv: list[str] | None = None) -> int:
    """Run one trial of a local job: ``python -m hpcsweep.consumer EXPERIMENT_DIR BATCH POSITION``."""
    arguments = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_array_task(arguments[0], arguments[1], int(arguments[2]))
    except TrialFailedError as err:
        logger.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
