"""The array task: a thin consumer that runs one trial (or, locally, a queue of trials).

It receives only the experiment directory, the batch id and its position in the
batch, reads the rest from the store, rebuilds the command-line parser from the
saved state, and runs the user's script as a black box, without a shell, in the
trial's working directory.  It writes only the files of its own trial: the
attempt file in ``attempts/`` and the files in the working directory.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hpcsweep.atomic import write_json_atomic, write_text_atomic
from hpcsweep.cmdline import CommandLine
from hpcsweep.errors import TrialFailedError
from hpcsweep.results import InvalidResultsError, read_results
from hpcsweep.store import attempt_file_name, read_json
from hpcsweep.trials import BROKEN, COMPLETED, INTERRUPTED, RUNNING

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
STDERR_TAIL_BYTES = 4096
STDERR_TAIL_LINES = 20
# Signals that ask the array task to stop: Slurm's warning before the time limit
# (USR2 with submitit), scancel (TERM), and an interactive interrupt (INT).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2, signal.SIGUSR1)


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
    local = os.environ.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getppid())
    return JobIds(local, None, None)


def run_array_task(experiment_dir: str, batch_id: str, start: int, step: int = 0) -> dict[str, int]:
    """Run the trial at ``start`` in the batch, or with ``step`` every ``step``-th trial from it.

    Returns the count of trials by status; raises :class:`TrialFailedError` at the
    end if any trial did not complete, so that the scheduler marks the task failed.
    """
    directory = Path(experiment_dir)
    experiment = read_json(directory / "experiment.json")["experiment"]["1"]
    batch = read_json(directory / "batches" / f"{batch_id}.json")
    trials = batch["trials"]
    positions = [start] if step <= 0 else list(range(start, len(trials), step))
    runner = TrialRunner(directory, experiment)

    counts: dict[str, int] = {}
    failed: list[str] = []
    for position in positions:
        if runner.stop_requested:
            break
        status = runner.run(trials[position])
        counts[status] = counts.get(status, 0) + 1
        if status not in (COMPLETED, "skipped"):
            failed.append(f"{trials[position]['id']} ({status})")
    if failed:
        raise TrialFailedError(f"{len(failed)} of {len(positions)} trials did not complete: {', '.join(failed)}")
    return counts


class TrialRunner:
    """Runs trials of one experiment, one at a time, within one array task."""

    def __init__(self, experiment_dir: Path, experiment: dict[str, Any]) -> None:
        self.experiment_dir = experiment_dir
        self.experiment = experiment
        self.command = CommandLine.from_json(experiment["parser_state"])
        self.settings = experiment["settings"]
        self.ids = _job_ids()
        self.host = socket.gethostname()
        self.stop_requested = False
        self.stop_signal: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ----------------------------------------------------------------- trial

    def run(self, trial: dict[str, Any]) -> str:
        trial_id = trial["id"]
        attempts_dir = self.experiment_dir / "attempts"
        if self._already_completed(attempts_dir, trial_id):
            logger.info("trial %s is already completed; nothing to do", trial_id)
            return "skipped"

        working_dir = Path(trial["working_dir"])
        working_dir.mkdir(parents=True, exist_ok=True)
        attempts_dir.mkdir(exist_ok=True)
        restart = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
        key = f"{time.time_ns()}-{os.getpid()}"
        attempt_path = attempts_dir / attempt_file_name(trial_id, key)
        attempt: dict[str, Any] = {
            "trial": trial_id, "key": key, "status": RUNNING, "attempt": restart + 1,
            "start_time": time.time(), "end_time": None, "heartbeat_time": time.time(),
            "job_id": self.ids.job_id, "array_job_id": self.ids.array_job_id,
            "array_task_id": self.ids.array_task_id, "host": self.host, "pid": os.getpid(),
            "exit_code": None, "objective": None, "results": None, "reason": None, "stderr_tail": None,
        }
        write_json_atomic(attempt_path, attempt)
        logger.info("trial %s starting in %s (job %s)", trial_id, working_dir, self.ids.job_id)

        try:
            outcome = self._execute(trial, working_dir, attempt_path)
        except Exception as err:  # record, then let the task fail
            logger.exception("trial %s failed inside hpcsweep", trial_id)
            outcome = {"status": BROKEN, "reason": f"hpcsweep could not run the trial: {err}"}
        attempt.update(outcome)
        attempt["end_time"] = time.time()
        write_json_atomic(attempt_path, attempt)
        logger.info(
            "trial %s ended %s (exit code %s)%s", trial_id, attempt["status"], attempt["exit_code"],
            f": {attempt['reason']}" if attempt.get("reason") else "",
        )
        return str(attempt["status"])

    def _already_completed(self, attempts_dir: Path, trial_id: str) -> bool:
        if not attempts_dir.is_dir():
            return False
        for path in attempts_dir.glob(f"{trial_id}.*.json"):
            try:
                if read_json(path).get("status") == COMPLETED:
                    return True
            except (OSError, ValueError):
                continue
        return False

    def _execute(self, trial: dict[str, Any], working_dir: Path, attempt_path: Path) -> dict[str, Any]:
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
        environment = self._environment(trial, working_dir, results_path, attempt_path)

        stdout_path, stderr_path = working_dir / STDOUT_FILE, working_dir / STDERR_FILE
        with open(stdout_path, "ab") as stdout, open(stderr_path, "ab") as stderr:
            stderr_offset = stderr.tell()
            self._process = subprocess.Popen(
                argv, cwd=working_dir, env=environment, stdin=subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, start_new_session=True,
            )
        timed_out = self._wait(attempt_path)
        exit_code = self._process.returncode
        self._process = None

        outcome: dict[str, Any] = {"exit_code": exit_code}
        interrupt_code = int(self.settings.get("interrupt_code", 130))
        if timed_out:
            outcome.update(status=INTERRUPTED, reason=f"time limit of {self.settings['time_min']} min reached")
        elif self.stop_signal is not None:
            outcome.update(
                status=INTERRUPTED,
                reason=f"array task received {signal.Signals(self.stop_signal).name}",
            )
        elif exit_code == interrupt_code:
            outcome.update(status=INTERRUPTED, reason=f"script exited with the interrupt code {interrupt_code}")
        elif exit_code != 0:
            if exit_code < 0:
                reason = f"script killed by {signal.Signals(-exit_code).name}"
            else:
                reason = f"script exited with code {exit_code}"
            outcome.update(status=BROKEN, reason=reason)
        else:
            try:
                results = read_results(results_path)
            except InvalidResultsError as err:
                outcome.update(status=BROKEN, reason=f"exit code 0 but {err}")
            else:
                outcome.update(status=COMPLETED, objective=results.objective, results=results.results)
        if outcome["status"] != COMPLETED:
            outcome["stderr_tail"] = _tail(stderr_path, stderr_offset)
        return outcome

    def _environment(
        self, trial: dict[str, Any], working_dir: Path, results_path: Path, attempt_path: Path
    ) -> dict[str, str]:
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
        environment["HPCSWEEP_ATTEMPT"] = str(int(os.environ.get("SLURM_RESTART_COUNT", "0")) + 1)
        return environment

    # --------------------------------------------------------- process control

    def _wait(self, attempt_path: Path) -> bool:
        """Wait for the script, beating the heartbeat; return True if it hit the time limit."""
        assert self._process is not None
        heartbeat_s = float(self.settings.get("heartbeat_s", 60))
        limit_s = self.settings.get("trial_timeout_s")
        deadline = time.monotonic() + float(limit_s) if limit_s else None
        previous = self._install_handlers()
        stop_heartbeat = threading.Event()
        beater = threading.Thread(
            target=_beat, args=(attempt_path, heartbeat_s, stop_heartbeat), daemon=True
        )
        beater.start()
        timed_out = False
        try:
            while True:
                try:
                    self._process.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self.stop_signal is not None:
                    self._terminate_group()
                    break
                if deadline is not None and time.monotonic() > deadline:
                    timed_out = True
                    self._terminate_group()
                    break
        finally:
            stop_heartbeat.set()
            beater.join()
            self._restore_handlers(previous)
        return timed_out

    def _terminate_group(self) -> None:
        """Send SIGTERM to the script's process group, then SIGKILL after the grace period."""
        assert self._process is not None
        group = self._process.pid
        grace_s = float(self.settings.get("grace_s", 60))
        _signal_group(group, signal.SIGTERM)
        try:
            self._process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("script ignored SIGTERM for %.0f s; killing its process group", grace_s)
        # Children may outlive the script's main process: kill what is left of the group.
        _signal_group(group, signal.SIGKILL)
        self._process.wait()

    def _install_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, self._on_stop_signal)
        return previous

    def _restore_handlers(self, previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        logger.warning("array task received %s; stopping the trial", signal.Signals(signum).name)
        self.stop_signal = signum
        self.stop_requested = True


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _beat(path: Path, interval_s: float, stop: threading.Event) -> None:
    while not stop.wait(interval_s):
        try:
            os.utime(path)
        except OSError as err:
            logger.warning("heartbeat of %s failed: %s", path, err)


def _tail(path: Path, offset: int) -> str:
    """Return the last lines that this attempt wrote to ``path``."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, size - STDERR_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-STDERR_TAIL_LINES:])
