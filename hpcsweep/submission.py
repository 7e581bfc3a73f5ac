"""Submission of a batch of trials through submitit, as Slurm job arrays or local jobs.

Slurm caps the *index value* of an array at ``MaxArraySize - 1`` (1001 by default).
So a batch larger than that is cut into chunks of at most ``MaxArraySize`` tasks,
each its own array with indices from 0.  Each task learns its trial from the
chunk's offset.  Every chunk is one ``sbatch`` call, throttled with ``%``.

submitit's local executor starts every job it is given at once, so a local batch
runs as ``parallelism`` jobs, each working through every ``parallelism``-th trial.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from hpcsweep.errors import SubmissionError, UsageError

logger = logging.getLogger(__name__)

DEFAULT_MAX_ARRAY_SIZE = 1001
EXECUTORS = ("slurm", "local")


@dataclass
class ExecutorOptions:
    """Options of the executor that runs the array tasks; the Slurm fields map to sbatch options."""

    executor: str = "local"
    parallelism: int = 16
    time_min: int = 60
    partition: str | None = None
    cpus_per_task: int | None = None
    gpus_per_task: int | None = None
    mem_gb: float | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    slurm_setup: list[str] = field(default_factory=list)
    slurm_args: dict[str, str] = field(default_factory=dict)
    signal_delay_s: int = 90

    def check(self) -> None:
        if self.executor not in EXECUTORS:
            raise UsageError(f"--executor {self.executor!r}: valid executors are {', '.join(EXECUTORS)}")
        if self.parallelism < 1:
            raise UsageError(f"--parallelism {self.parallelism}: must be at least 1")
        if self.time_min < 1:
            raise UsageError(f"--time {self.time_min}: the time limit is in minutes and must be at least 1")
        for label, value in (("--cpus-per-task", self.cpus_per_task), ("--gpus-per-task", self.gpus_per_task)):
            if value is not None and value < 0:
                raise UsageError(f"{label} {value}: must be 0 or more")
        if self.mem_gb is not None and not (math.isfinite(self.mem_gb) and self.mem_gb > 0):
            raise UsageError(f"--mem-gb {self.mem_gb}: must be a number of GB above 0")
        if self.signal_delay_s < 0:
            raise UsageError(f"--signal-delay-s {self.signal_delay_s}: must be 0 or more")
        if self.executor == "slurm":
            missing = [tool for tool in ("sbatch", "srun", "scontrol") if shutil.which(tool) is None]
            if missing:
                raise UsageError(f"--executor slurm: {', '.join(missing)} not found on PATH; load Slurm's "
                                 f"module or use --executor local")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_executor() -> str:
    return "slurm" if shutil.which("sbatch") else "local"


def read_max_array_size() -> int:
    """Return the cluster's MaxArraySize from ``scontrol show config``, or Slurm's default."""
    try:
        output = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as err:
        logger.warning("cannot read MaxArraySize (%s); using Slurm's default %d", err, DEFAULT_MAX_ARRAY_SIZE)
        return DEFAULT_MAX_ARRAY_SIZE
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


def plan_chunks(count: int, max_array_size: int, parallelism: int) -> list[dict[str, Any]]:
    """Cut ``count`` tasks into arrays of at most ``max_array_size`` tasks.

    The throttle is divided between the chunks so that together they run at most
    ``parallelism`` tasks, but each chunk runs at least one.
    """
    size = max(1, max_array_size)
    starts = list(range(0, count, size))
    throttle = max(1, parallelism // max(1, len(starts)))
    if parallelism < len(starts):
        logger.warning(
            "--parallelism %d is below the number of arrays (%d); each array runs one task at a time",
            parallelism, len(starts),
        )
    return [
        {"start": start, "stop": min(start + size, count), "throttle": throttle, "job_id": None}
        for start in starts
    ]


def make_batch(batch_id: str, trials: list[dict[str, Any]], options: ExecutorOptions,
               **extra: Any) -> dict[str, Any]:
    """Return a new batch of ``trials``, cut into arrays for Slurm, not yet submitted."""
    if options.executor == "slurm":
        chunks = plan_chunks(len(trials), read_max_array_size(), options.parallelism)
    else:
        chunks = [{"start": 0, "stop": len(trials), "throttle": options.parallelism, "job_id": None}]
    return {
        "id": batch_id,
        "created_time": time.time(),
        "executor": options.executor,
        "trials": [{"id": t["id"], "number": t["number"], "params": t["params"],
                    "working_dir": t["working_dir"]} for t in trials],
        "chunks": chunks,
        **extra,
    }


def _slurm_parameters(options: ExecutorOptions, job_name: str) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "time": options.time_min,
        "job_name": job_name,
        "signal_delay_s": options.signal_delay_s,
        "setup": list(options.slurm_setup),
        # Slurm sends the --signal warning to job steps, so the task runs in a step (srun).
        "use_srun": True,
    }
    optional = {
        "partition": options.partition, "cpus_per_task": options.cpus_per_task,
        "gpus_per_task": options.gpus_per_task, "account": options.account, "qos": options.qos,
        "constraint": options.constraint,
    }
    parameters.update({key: value for key, value in optional.items() if value is not None})
    if options.mem_gb is not None:
        parameters["mem"] = f"{int(math.ceil(options.mem_gb * 1024))}M"
    # --requeue lets an interrupted task requeue itself even where JobRequeue=0.
    parameters["additional_parameters"] = {"requeue": True, **options.slurm_args}
    return parameters


def submit_batch(
    experiment_dir: Path,
    job_name: str,
    batch: dict[str, Any],
    options: ExecutorOptions,
    save_batch: Callable[[dict[str, Any]], None],
    retry_command: str | None = None,
) -> list[Any]:
    """Submit the chunks of ``batch`` that have no job id yet; return the submitit jobs.

    ``retry_command`` is the command that a failure message suggests to submit the rest.

    ``save_batch`` is called after each successful ``sbatch`` so that the store
    records every array that exists, and only those.  A failed ``sbatch`` raises
    :class:`SubmissionError` naming the chunks that were and were not submitted.
    """
    import submitit  # heavy: imported only when submitting

    from hpcsweep.consumer import run_array_task

    folder = experiment_dir / "submitit" / "%j"
    directory = str(experiment_dir)
    submitted: list[Any] = []

    if options.executor == "local":
        executor = submitit.LocalExecutor(folder=folder)
        lanes = min(options.parallelism, len(batch["trials"]))
        per_lane = math.ceil(len(batch["trials"]) / max(1, lanes))
        executor.update_parameters(
            timeout_min=options.time_min * per_lane + 1, signal_delay_s=options.signal_delay_s,
        )
        with _standard_streams_to(experiment_dir / "submitit" / "local-jobs.log"):
            jobs = executor.map_array(
                run_array_task, [directory] * lanes, [batch["id"]] * lanes, list(range(lanes)), [lanes] * lanes
            )
        batch["chunks"] = [{"start": 0, "stop": len(batch["trials"]), "throttle": lanes,
                            "job_id": ",".join(job.job_id for job in jobs)}]
        batch["settings"] = {"time_min": options.time_min, "trial_timeout_s": options.time_min * 60}
        save_batch(batch)
        return list(jobs)

    for number, chunk in enumerate(batch["chunks"]):
        if chunk.get("job_id"):
            continue
        array_name = f"{job_name}.{batch['id']}.{number}"
        if chunk.get("attempted"):
            # A submit killed while sbatch ran may have queued this array unrecorded.  Its
            # tasks cannot run (submitit names their inputs after the job id that sbatch
            # returns), so it is cancelled and the array submitted again.
            existing = find_array_by_name(array_name)
            if existing is not None:
                logger.warning("cancelling job %s, queued for array %d of batch %s by a submit that "
                               "was interrupted; submitting that array again", existing, number + 1, batch["id"])
                subprocess.run(["scancel", existing], capture_output=True, timeout=60)
        chunk["attempted"] = True
        save_batch(batch)
        slurm = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
        slurm.update_parameters(**_slurm_parameters(options, array_name))
        slurm.update_parameters(array_parallelism=chunk["throttle"])
        count = chunk["stop"] - chunk["start"]
        positions = list(range(chunk["start"], chunk["stop"]))
        try:
            # submitit prints sbatch's stderr itself when sbatch fails. The error raised
            # below carries that message, so the user sees it once, on one line.
            with contextlib.redirect_stderr(io.StringIO()):
                jobs = slurm.map_array(run_array_task, [directory] * count, [batch["id"]] * count, positions)
        except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError,
                subprocess.CalledProcessError, OSError) as err:
            message = _sbatch_message(err)
            done = [c["job_id"] for c in batch["chunks"] if c.get("job_id")]
            raise SubmissionError(
                f"sbatch failed for array {number + 1} of {len(batch['chunks'])} "
                f"(trials {chunk['start']}-{chunk['stop'] - 1}): {message}; "
                f"{len(done)} arrays were submitted before it ({', '.join(done) or 'none'}); "
                f"fix the cause, then run {retry_command or f'hpcsweep submit -n {job_name} --resume'} "
                f"to submit the rest"
            ) from err
        array_id = jobs[0].job_id.split("_")[0]
        chunk["job_id"] = array_id
        save_batch(batch)
        submitted.extend(jobs)
        logger.info("submitted array %s: trials %d-%d", array_id, chunk["start"], chunk["stop"] - 1)
    return submitted


@contextlib.contextmanager
def _standard_streams_to(log_path: Path) -> Iterator[None]:
    """Point file descriptors 0, 1 and 2 away from the terminal while local jobs start.

    Local jobs inherit them and outlive ``submit``; holding the caller's pipe open
    would make ``hpcsweep submit ... | tee log`` wait for the whole sweep.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(descriptor) for descriptor in (0, 1, 2)]
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        for descriptor, copy in zip((0, 1, 2), saved):
            os.dup2(copy, descriptor)
            os.close(copy)
        os.close(null)
        os.close(log)


def find_array_by_name(name: str) -> str | None:
    """Return the id of the job called ``name`` in Slurm's records (squeue, else sacct), or None."""
    for command in (["squeue", "-h", "-o", "%F", "-n", name],
                    ["sacct", "-X", "-n", "-P", "-o", "JobID", "-S", "now-7days", "--name", name]):
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as err:
            logger.warning("%s failed: %s", command[0], err)
            continue
        ids = [line.split("_")[0].strip() for line in result.stdout.splitlines() if line.strip()]
        if result.returncode == 0 and ids:
            return ids[-1]
    return None


def _sbatch_message(err: BaseException) -> str:
    if isinstance(err, subprocess.CalledProcessError):
        output = err.stderr or err.output or b""
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
        return " ".join(text.split()) or f"exit status {err.returncode}"
    return " ".join(str(err).split())
