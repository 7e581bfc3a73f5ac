"""Interruptions of a running trial: what stopped it, and whether it comes back.

Slurm warns a task ``--signal-delay-s`` seconds before its time limit with the
signal that submitit requests (SIGUSR2); ``scancel`` and preemption send SIGTERM.
SIGTERM alone cannot tell a cancelled task from a preempted one, so the task reads
its own record from Slurm (``scontrol show job``).  The state and reason of the
latest attempt decide, never the elapsed time.

Each kind of interruption has its own requeue budget: timeouts and exits with the
interrupt code share ``max_requeues``; preemptions and failures of the node use the
larger ``max_preemptions``, so that nothing can requeue forever; a cancellation
never requeues.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess

from hpcsweep.errors import UsageError

logger = logging.getLogger(__name__)

TIMEOUT = "timeout"
PREEMPTION = "preemption"
CANCELLED = "cancelled"
INTERRUPT_CODE = "interrupt_code"
KINDS = (TIMEOUT, PREEMPTION, CANCELLED, INTERRUPT_CODE)

# The signal that submitit requests from Slurm as the warning before the time limit.
TIMEOUT_SIGNAL = signal.SIGUSR2


def parse_signal(name: str, option: str = "--forward-signal") -> int:
    """Return the number of the signal called ``name`` (``SIGTERM``, ``TERM`` or ``15``)."""
    text = name.strip().upper()
    if text.isdigit():
        try:
            return int(signal.Signals(int(text)))
        except ValueError:
            pass
    else:
        full = text if text.startswith("SIG") else f"SIG{text}"
        if full in signal.Signals.__members__ and full not in ("SIGKILL", "SIGSTOP"):
            return int(signal.Signals[full])
    valid = "SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP, SIGQUIT"
    raise UsageError(f"{option} {name!r}: unknown or uncatchable signal; use one of {valid}")


def budget_of(kind: str) -> str | None:
    """Return which requeue budget an interruption of ``kind`` uses, or None if it never requeues."""
    if kind in (TIMEOUT, INTERRUPT_CODE):
        return "requeues"
    if kind == PREEMPTION:
        return "preemptions"
    return None


def slurm_job_record(job_id: str) -> dict[str, str]:
    """Return Slurm's fields of ``job_id`` (JobState, Reason, RestartCnt...), or {} if unknown."""
    try:
        result = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job_id],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as err:
        logger.warning("cannot read the Slurm record of job %s: %s", job_id, err)
        return {}
    if result.returncode != 0:
        logger.warning("scontrol show job %s failed: %s", job_id, result.stderr.strip())
        return {}
    return dict(re.findall(r"(\w+)=(\S*)", result.stdout))


def classify_stop_signal(signum: int) -> str:
    """Return the kind of interruption that ``signum`` announces for the current task."""
    if signum == TIMEOUT_SIGNAL:
        return TIMEOUT
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return CANCELLED  # a local job is stopped only by 'hpcsweep cancel' or the user
    record = slurm_job_record(job_id)
    state = record.get("JobState", "")
    reason = record.get("Reason", "")
    if state in ("PREEMPTED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED") or "Preempt" in reason:
        return PREEMPTION
    if state in ("NODE_FAIL", "BOOT_FAIL") or reason in ("NodeDown", "NodeFail"):
        return PREEMPTION
    if state == "TIMEOUT":
        return TIMEOUT
    # NOTE: preemption was tested only through these states on a cluster without a
    # preemption policy; a SIGTERM while Slurm still reports RUNNING (or when scontrol
    # fails) counts as a cancellation and is not requeued automatically.
    return CANCELLED


def requeue_slurm_task() -> str | None:
    """Ask Slurm to requeue the current array task; return an error message, or None on success."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    array_task = os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = f"{array_job}_{array_task}" if array_job and array_task else os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return "not running under Slurm"
    try:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    if result.returncode != 0:
        return " ".join(result.stderr.split()) or f"scontrol exited with {result.returncode}"
    logger.info("requeued Slurm task %s", job_id)
    return None
