"""Running the user's script as a supervised process group.

The script runs without a shell, in its own session and process group, so that a
signal reaches it and every child it starts.  While it runs, a thread refreshes
the heartbeat (the modification time of the attempt file).  When the array task
is asked to stop, or a local time limit approaches, the configured signal goes to
the whole group.  After the grace period SIGKILL ends what is left of it, so no
child outlives the trial.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

# Signals that ask the array task to stop: Slurm's warning before the time limit
# (SIGUSR2, as submitit requests it), scancel and preemption (SIGTERM), and an
# interactive interrupt (SIGINT).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2, signal.SIGUSR1)


@dataclass
class ProcessOutcome:
    exit_code: int
    stop_signal: int | None = None  # the signal that asked the task to stop, if any
    local_timeout: bool = False  # the local time limit was reached
    killed_after_grace: bool = False


@dataclass
class Supervision:
    heartbeat_path: Path
    heartbeat_s: float
    forward_signal: int = signal.SIGTERM
    grace_s: float = 60.0
    time_limit_s: float | None = None  # local executor only: Slurm enforces its own
    warning_s: float = 90.0  # how long before the time limit the script is signalled


class StopFlag:
    """Records the first stop signal received by the array task, from any trial."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        logger.warning("array task received %s", signal.Signals(signum).name)
        if self.signum is None:
            self.signum = signum


def run_supervised(
    argv: list[str], cwd: Path, environment: dict[str, str], stdout_path: Path, stderr_path: Path,
    supervision: Supervision, stop: StopFlag,
) -> tuple[ProcessOutcome, int]:
    """Run ``argv`` to its end; return its outcome and the offset where its stderr starts."""
    with open(stdout_path, "ab") as stdout, open(stderr_path, "ab") as stderr:
        stderr_offset = stderr.tell()
        process = subprocess.Popen(
            argv, cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=stderr, start_new_session=True, preexec_fn=_prepare_child,
        )
    beat_stop = threading.Event()
    beater = threading.Thread(target=_beat, args=(supervision.heartbeat_path, supervision.heartbeat_s, beat_stop),
                              daemon=True)
    beater.start()
    outcome = ProcessOutcome(exit_code=0)
    started = time.monotonic()
    try:
        warn_at = None
        if supervision.time_limit_s is not None:
            limit_s = supervision.time_limit_s
            # Like Slurm's --signal, the warning comes warning_s before the limit.
            warn_at = started + max(limit_s - supervision.warning_s, 0.0)
        while True:
            try:
                process.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            if stop.signum is not None:
                outcome.stop_signal = stop.signum
            elif warn_at is not None and time.monotonic() >= warn_at:
                outcome.local_timeout = True
            else:
                continue
            outcome.killed_after_grace = _stop_group(process, supervision)
            break
    finally:
        beat_stop.set()
        beater.join()
    if outcome.stop_signal is None and process.returncode != 0:
        # scancel and preemption signal the script and the array task at the same
        # moment, so the script may die before this task receives its own signal.
        deadline = time.monotonic() + 1.0
        while stop.signum is None and time.monotonic() < deadline:
            time.sleep(0.05)
        outcome.stop_signal = stop.signum
    # The main process has exited; children that ignored the signal may remain.
    _signal_group(process.pid, signal.SIGKILL)
    outcome.exit_code = process.returncode
    return outcome, stderr_offset


def _prepare_child() -> None:
    """Set up the script's process between fork and exec.

    Slurm's time-limit warning (SIGUSR2 from submitit's ``--signal``) goes to every
    process of the job step, the script included, and would kill a script that does
    not handle it.  So the script starts with it ignored, and the consumer forwards
    the configured signal instead.  A script may still install its own handler.
    Linux also sends SIGKILL to the script if its consumer dies, so no script runs
    unsupervised.
    """
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop_group(process: subprocess.Popen[bytes], supervision: Supervision) -> bool:
    """Forward the stop signal to the group, wait the grace period, then SIGKILL; return
    True if the script had to be killed."""
    name = signal.Signals(supervision.forward_signal).name
    logger.info("sending %s to the script's process group %d", name, process.pid)
    _signal_group(process.pid, supervision.forward_signal)
    deadline = time.monotonic() + supervision.grace_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    logger.warning("script did not exit %.0f s after %s; killing its process group", supervision.grace_s, name)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()
    return True


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


def read_tail(path: Path, offset: int, max_bytes: int = 4096, max_lines: int = 20) -> str:
    """Return the last lines written to ``path`` after ``offset``."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-max_lines:])
