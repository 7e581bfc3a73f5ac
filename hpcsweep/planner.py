"""The planner: turns a ``submit`` request into an experiment, trials and a batch.

Planning validates everything and writes nothing, so an invalid request leaves no
trace in the store.  Recording then writes the trials, the batch and the
experiment under the writer lock, experiment last, so that an experiment exists
only once all of its files do.  Submission comes after recording: the plan and the
parser state are on disk before the first ``sbatch``.
"""

from __future__ import annotations

import getpass
import math
import secrets
import logging
import os
import shlex
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpcsweep import __version__
from hpcsweep.algorithms import Algorithm, PastTrial, make_algorithm
from hpcsweep.cmdline import CommandLine
from hpcsweep.errors import UsageError
from hpcsweep.interrupts import parse_signal
from hpcsweep.snapshot import DEFAULT_LIMIT_MB, SnapshotPlan, plan_snapshot, write_snapshot
from hpcsweep.store import Store, check_experiment_name
from hpcsweep.submission import ExecutorOptions, make_batch
from hpcsweep.trials import new_trial
from hpcsweep.versioning import choose_target, differences

CODE_CHANGE_MODES = ("warn", "fail", "ignore")
# Planning a million trials takes a few seconds and a few hundred MB; more is a typo.
MAX_TRIALS = 1_000_000

logger = logging.getLogger(__name__)


@dataclass
class SubmitRequest:
    """Everything ``hpcsweep submit`` was asked to do."""

    name: str
    command: list[str]
    max_trials: int = 10
    algorithm: str = "random"
    seed: int | None = None
    grid_points: int = 5
    config_option: str = "--config"
    render_modes: dict[str, str] = field(default_factory=dict)
    maximize: bool = False
    interrupt_code: int = 130
    heartbeat_s: float = 60.0
    grace_s: float = 60.0
    forward_signal: str = "SIGTERM"
    max_requeues: int = 3
    max_preemptions: int = 20
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)
    cwd: Path = field(default_factory=Path.cwd)
    new_version: bool = False
    branch: str | None = None
    code_change: str = "warn"
    snapshot_code: bool = False
    snapshot_limit_mb: float = DEFAULT_LIMIT_MB


@dataclass
class Plan:
    """The result of planning: what to record and what to submit."""

    experiment: dict[str, Any]
    command: CommandLine
    algorithm: Algorithm
    existing_trials: list[dict[str, Any]]
    new_trials: list[dict[str, Any]]
    is_new_experiment: bool
    batch: dict[str, Any] | None = None
    snapshot: SnapshotPlan | None = None

    @property
    def all_trials(self) -> list[dict[str, Any]]:
        return self.existing_trials + self.new_trials


def _check_request(request: SubmitRequest) -> None:
    check_experiment_name(request.name)
    if request.max_trials < 1:
        raise UsageError(f"--max-trials {request.max_trials}: must be at least 1")
    if not 1 <= request.interrupt_code <= 255:
        raise UsageError(f"--interrupt-code {request.interrupt_code}: must be an exit status from 1 to 255")
    if not math.isfinite(request.heartbeat_s) or request.heartbeat_s <= 0:
        raise UsageError(f"--heartbeat-s {request.heartbeat_s}: must be a number of seconds above 0")
    if not math.isfinite(request.grace_s) or request.grace_s < 0:
        raise UsageError(f"--grace-s {request.grace_s}: must be a number of seconds, 0 or more")
    if request.max_trials > MAX_TRIALS:
        raise UsageError(f"--max-trials {request.max_trials}: at most {MAX_TRIALS:,} trials per submission; "
                         f"submit the sweep in parts with a rising --max-trials")
    if not math.isfinite(request.snapshot_limit_mb) or request.snapshot_limit_mb <= 0:
        raise UsageError(f"--snapshot-limit-mb {request.snapshot_limit_mb}: must be a number above 0")
    if request.grace_s > request.executor.signal_delay_s:
        raise UsageError(
            f"--grace-s {request.grace_s:g} is longer than --signal-delay-s {request.executor.signal_delay_s}: "
            f"the script would be killed by the time limit before its grace ends; "
            f"lower --grace-s or raise --signal-delay-s"
        )
    if request.max_requeues < 0:
        raise UsageError(f"--max-requeues {request.max_requeues}: must be 0 or more (0 disables requeue)")
    if request.max_preemptions < 0:
        raise UsageError(f"--max-preemptions {request.max_preemptions}: must be 0 or more")
    parse_signal(request.forward_signal)
    if not request.config_option.startswith("-"):
        raise UsageError(f"--config-option {request.config_option!r}: must be an option such as --config")
    request.executor.check()


def plan_submission(store: Store, request: SubmitRequest) -> Plan:
    """Validate ``request`` and plan its trials; write nothing."""
    _check_request(request)
    command = CommandLine.parse(request.command, request.config_option, request.render_modes, request.cwd)
    if request.code_change not in CODE_CHANGE_MODES:
        raise UsageError(f"--code-change {request.code_change!r}: valid modes are {', '.join(CODE_CHANGE_MODES)}")

    from hpcsweep.vcs import read_vcs_state

    script = command.script_path()
    vcs = read_vcs_state(Path(script) if script and os.path.isabs(script) else request.cwd, ignore=[store.root])
    snapshot = plan_snapshot(vcs, request.snapshot_limit_mb) if request.snapshot_code else None

    latest_key = store.resolve(request.name)
    latest = store.load_experiment(latest_key) if store.exists(latest_key) else None
    seed = request.seed
    if seed is None:
        # Without --seed, a continued experiment keeps its first seed.  A new one draws
        # a seed and records it, so that its trials can be planned again identically.
        seed = latest["algorithm"].get("seed") if latest else secrets.randbelow(2**31)
    algorithm = make_algorithm(request.algorithm, seed, request.grid_points)
    changes = differences(latest, command, algorithm, request.maximize, vcs) if latest else []
    target = choose_target(store, request.name, request.new_version, request.branch, changes, latest)

    settings = {
        "interrupt_code": request.interrupt_code,
        "heartbeat_s": request.heartbeat_s,
        "grace_s": request.grace_s,
        "forward_signal": parse_signal(request.forward_signal),
        "max_requeues": request.max_requeues,
        "max_preemptions": request.max_preemptions,
        "signal_delay_s": request.executor.signal_delay_s,
        "time_min": request.executor.time_min,
        # Slurm enforces the time limit itself; local jobs are bounded by the consumer.
        "trial_timeout_s": request.executor.time_min * 60 if request.executor.executor == "local" else None,
        "code_change": request.code_change,
    }

    existing_trials: list[dict[str, Any]] = []
    if target.existing is not None:
        existing_trials, _ = store.load_saved_trials(target.key)
        experiment = dict(target.existing, max_trials=request.max_trials, settings=settings,
                          executor=request.executor.to_json())
    else:
        experiment = {
            "id": uuid.uuid4().hex,
            "key": target.key,
            "name": target.name,
            "version": target.version,
            "parent": target.parent,
            "user": getpass.getuser(),
            "hpcsweep_version": __version__,
            "command": list(request.command),
            "command_line": shlex.join(request.command),
            "parser_state": command.to_json(),
            "space": command.space.to_json(),
            "algorithm": algorithm.to_json(),
            "max_trials": request.max_trials,
            "maximize": request.maximize,
            "submit_time": time.time(),
            "submit_dir": str(request.cwd),
            "script": script,
            "vcs": vcs,
            "snapshot": None,
            "settings": settings,
            "executor": request.executor.to_json(),
        }

    history = [PastTrial(t["params"], t.get("status", "new"), t.get("objective")) for t in existing_trials]
    count = request.max_trials - len(existing_trials)
    suggestions = algorithm.suggest(command.space, history, count) if count > 0 else []
    if request.algorithm == "grid" and len(suggestions) < count:
        logger.info("the grid has %d points; planning %d trials, not %d",
                    len(history) + len(suggestions), len(suggestions), count)

    experiment_dir = store.root / target.key
    first = len(existing_trials)
    new_trials = [
        new_trial(experiment["id"], first + offset, params, "")
        for offset, params in enumerate(suggestions)
    ]
    for trial in new_trials:
        trial["working_dir"] = str(experiment_dir / "trials" / trial["id"])
    if not command.space:
        logger.warning("the command has no prior (--name~'prior(...)'): every trial runs the same command")
    plan = Plan(experiment, command, algorithm, existing_trials, new_trials, target.existing is None)
    plan.snapshot = snapshot if target.existing is None else None
    return plan


def unsubmitted_trials(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the trials that were never submitted, such as those added by ``insert``."""
    return [trial for trial in trials if trial.get("batch") is None and trial.get("status") == "new"]


def record_plan(store: Store, plan: Plan, include_unsubmitted: bool = True) -> dict[str, Any] | None:
    """Write the plan's trials, batch and experiment; return the batch to submit, if any.

    The batch contains the new trials and, with ``include_unsubmitted``, earlier trials
    that were never submitted.  The caller holds the writer lock of the experiment.
    """
    key = plan.experiment["key"]
    experiment_dir = store.root / key
    if plan.is_new_experiment:
        _remove_debris(experiment_dir)
    for sub in ("trials", "attempts", "batches"):
        (experiment_dir / sub).mkdir(parents=True, exist_ok=True)
    if plan.snapshot is not None:
        plan.experiment["snapshot"] = write_snapshot(plan.snapshot, experiment_dir / "code")

    to_submit = (unsubmitted_trials(plan.existing_trials) if include_unsubmitted else []) + plan.new_trials
    batch = None
    if to_submit:
        options = ExecutorOptions(**plan.experiment["executor"])
        batch = make_batch(store.next_batch_id(key), to_submit, options)
        for trial in to_submit:
            trial["batch"] = batch["id"]
            trial["submitted_time"] = batch["created_time"]
        store.save_batch(key, batch)

    _, merged_files = store.load_saved_trials(key)
    store.save_trials(key, plan.all_trials, merged_files)
    store.save_experiment(plan.experiment)
    plan.batch = batch
    return batch


def _remove_debris(experiment_dir: Path) -> None:
    """Remove what a submit that failed before writing experiment.json left behind.

    Without experiment.json the experiment does not exist, so its batches and trial
    tables are debris that ``submit --resume`` must never pick up.
    """
    for pattern in ("batches/*.json", "trials.json", "summary.json", "claims/*/*"):
        for path in experiment_dir.glob(pattern):
            logger.info("removing %s, left by a submit that failed", path)
            path.unlink(missing_ok=True)
