"""The implementation of each ``hpcsweep`` command, called by :mod:`hpcsweep.cli`.

Each ``run_<command>`` takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from hpcsweep.collect import export_rows, format_rows, merge_and_save
from hpcsweep.errors import EXIT_FAILURE, EXIT_OK, StoreError, UsageError
from hpcsweep.store import Store, command_name

logger = logging.getLogger(__name__)


def _store(arguments: argparse.Namespace) -> Store:
    """Return the store; outside ``submit``, ``-n NAME`` becomes the key of its latest version."""
    store = Store(arguments.root)
    if getattr(arguments, "name", None) and arguments.command != "submit":
        arguments.name = store.resolve(arguments.name)
    return store


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# ---------------------------------------------------------------------- submit


def run_submit(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.lock import WriterLock
    from hpcsweep.planner import SubmitRequest, plan_submission, record_plan, unsubmitted_trials
    from hpcsweep.submission import ExecutorOptions, default_executor, submit_batch

    store = _store(arguments)
    if arguments.resume:
        return _resume(store, arguments)
    if arguments.pending_only:
        if command:
            raise UsageError("--pending-only submits the trials already recorded and takes no command after '--'")
        return _submit_pending(store, arguments)
    if not command:
        raise UsageError("no command given; write it after '--', as in: hpcsweep submit -n NAME -- python train.py")

    options = ExecutorOptions(
        executor=arguments.executor or default_executor(),
        parallelism=arguments.parallelism, time_min=arguments.time_min,
        partition=arguments.partition, cpus_per_task=arguments.cpus_per_task,
        gpus_per_task=arguments.gpus_per_task, mem_gb=arguments.mem_gb, account=arguments.account,
        qos=arguments.qos, constraint=arguments.constraint, slurm_setup=arguments.slurm_setup,
        slurm_args=dict(arguments.slurm_arg), signal_delay_s=arguments.signal_delay_s,
    )
    request = SubmitRequest(
        name=arguments.name, command=command, max_trials=arguments.max_trials,
        algorithm=arguments.algorithm, seed=arguments.seed, grid_points=arguments.grid_points,
        config_option=arguments.config_option, render_modes=_render_modes(arguments.render),
        maximize=arguments.maximize, interrupt_code=arguments.interrupt_code,
        heartbeat_s=arguments.heartbeat_s, grace_s=arguments.grace_s,
        forward_signal=arguments.forward_signal, max_requeues=arguments.max_requeues,
        max_preemptions=arguments.max_preemptions, executor=options,
        new_version=arguments.new_version, branch=arguments.branch, code_change=arguments.code_change,
        snapshot_code=arguments.snapshot_code, snapshot_limit_mb=arguments.snapshot_limit_mb,
    )
    plan = plan_submission(store, request)

    if arguments.dry_run or arguments.show is not None:
        _print_dry_run(plan, store, 3 if arguments.show is None else arguments.show)
        return EXIT_OK
    if not plan.new_trials and not unsubmitted_trials(plan.existing_trials):
        print(f"experiment {arguments.name!r} already has {len(plan.existing_trials)} trials; "
              f"nothing to submit", file=sys.stderr)
        return EXIT_OK

    key = plan.experiment["key"]
    experiment_dir = store.root / key
    try:
        experiment_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--root {store.root}: cannot create {experiment_dir} ({err.strerror}); "
                         f"choose a writable folder") from err
    with WriterLock(experiment_dir):
        # Plan again under the lock: another submit of the same name may have written meanwhile.
        plan = plan_submission(store, request)
        if plan.experiment["key"] != key:
            raise UsageError(f"experiment {arguments.name!r} changed while this submit was planning; run it again")
        if not plan.new_trials and not unsubmitted_trials(plan.existing_trials):
            print(f"experiment {arguments.name!r} already has {len(plan.existing_trials)} trials; "
                  f"nothing to submit", file=sys.stderr)
            return EXIT_OK
        batch = record_plan(store, plan)
        assert batch is not None
        jobs = submit_batch(experiment_dir, key, batch, options, lambda b: store.save_batch(key, b))
    job_ids = [chunk["job_id"] for chunk in batch["chunks"]]
    if plan.experiment.get("snapshot") and plan.is_new_experiment:
        snapshot = plan.experiment["snapshot"]
        print(f"code snapshot: {snapshot['files']} files, {snapshot['size_bytes'] / 1e6:.1f} MB in {snapshot['dir']}",
              file=sys.stderr)
    _out(f"experiment: {key}\nversion: {plan.experiment['version']}\ntrials: {len(batch['trials'])}\n"
         f"executor: {options.executor}\njobs: {' '.join(job_ids)}\n")

    if arguments.wait:
        from hpcsweep.monitor import wait_for_trials

        counts = wait_for_trials(store, key, {t["id"] for t in batch["trials"]}, jobs, arguments.poll_s)
        return _report_wait(key, counts)
    return EXIT_OK


def _report_wait(key: str, counts: dict[str, int]) -> int:
    """Print the counts after --wait; return 1 if some trials never ended because their jobs did."""
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    unfinished = counts.get("new", 0) + counts.get("running", 0)
    if unfinished:
        print(f"Error: the jobs ended but {unfinished} trials did not ({summary}); see "
              f"'hpcsweep status -n {key} --all', then 'hpcsweep requeue -n {key} --status new,lost'",
              file=sys.stderr)
        return EXIT_FAILURE
    print(f"all trials ended: {summary}", file=sys.stderr)
    return EXIT_OK


def _render_modes(pairs: list[tuple[str, str]]) -> dict[str, str]:
    modes = {}
    for name, mode in pairs:
        modes[name if name.startswith("/") else "/" + name.lstrip("-")] = mode
    return modes


def _print_dry_run(plan: Any, store: Store, show: int) -> None:
    experiment = plan.experiment
    _out(f"experiment: {experiment['name']} (dry run: nothing is written or submitted)\n")
    _out(f"trials planned: {len(plan.new_trials)}\n")
    for name, prior in plan.command.space.items():
        _out(f"  {name} ~ {prior.expression()}   rendered as: {plan.command.render_mode(name)}\n")
    experiment_dir = store.experiment_dir(experiment["name"])
    for trial in plan.new_trials[: max(0, show)]:
        working_dir = trial["working_dir"]
        placeholders = {
            "{trial.id}": trial["id"], "{trial.working_dir}": working_dir,
            "{exp.name}": experiment["name"], "{exp.version}": str(experiment["version"]),
            "{exp.working_dir}": str(experiment_dir),
        }
        config_path = None
        if plan.command.template is not None:
            config_path = str(Path(working_dir) / plan.command.template_filename())
        argv = plan.command.render(trial["params"], placeholders, config_path)
        _out(f"\ntrial {trial['id']} (number {trial['number']})\n")
        _out(f"  params: {json.dumps(trial['params'])}\n")
        _out(f"  argv: {json.dumps(argv)}\n")
        _out(f"  command: {shlex.join(argv)}\n")
        config = plan.command.render_config(trial["params"])
        if config is not None:
            _out(f"  config {config_path}:\n")
            _out("".join(f"    {line}\n" for line in config.splitlines()))


def _submit_pending(store: Store, arguments: argparse.Namespace) -> int:
    from hpcsweep.insert import submit_pending

    key = store.resolve(arguments.name)
    batch, jobs = submit_pending(store, key)
    if batch is None:
        print(f"experiment {key!r} has no trial waiting to be submitted", file=sys.stderr)
        return EXIT_OK
    job_ids = [chunk["job_id"] for chunk in batch["chunks"]]
    _out(f"experiment: {key}\ntrials: {len(batch['trials'])}\njobs: {' '.join(job_ids)}\n")
    if arguments.wait:
        from hpcsweep.monitor import wait_for_trials

        counts = wait_for_trials(store, key, {t["id"] for t in batch["trials"]}, jobs, arguments.poll_s)
        return _report_wait(key, counts)
    return EXIT_OK


def run_insert(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.insert import insert_trial, parse_assignments

    store = _store(arguments)
    key = arguments.name
    trial = insert_trial(store, key, parse_assignments(arguments.extra))
    _out(f"{trial['id']}\n")
    print(f"added trial {trial['id']} to {key!r}; run it with: "
          f"hpcsweep submit -n {command_name(store, key)} --pending-only", file=sys.stderr)
    return EXIT_OK


def _resume(store: Store, arguments: argparse.Namespace) -> int:
    from hpcsweep.submission import ExecutorOptions, submit_batch

    name = store.resolve(arguments.name)
    experiment = store.load_experiment(name)
    options = ExecutorOptions(**experiment["executor"])
    submitted: list[Any] = []
    with store.lock(name):
        for batch in store.list_batches(name):
            if all(chunk.get("job_id") for chunk in batch["chunks"]):
                continue
            submitted += submit_batch(store.experiment_dir(name), name, batch, options,
                                      lambda b: store.save_batch(name, b))
    if not submitted:
        print(f"every array of {name!r} is already submitted; nothing to resume", file=sys.stderr)
        return EXIT_OK
    ids = sorted({str(job.job_id).split("_")[0] for job in submitted})
    _out(f"experiment: {name}\njobs: {' '.join(ids)}\n")
    return EXIT_OK


# ---------------------------------------------------------------------- status


def run_status(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.scheduler import Backoff
    from hpcsweep.status import build_report, format_report, watch

    store = _store(arguments)
    names = [arguments.name] if arguments.name else store.list_experiments()
    if not names:
        print(f"no experiment under {store.root}", file=sys.stderr)
        return EXIT_OK
    if arguments.watch:
        watch(store, names, arguments.all, arguments.interval_s, as_json=arguments.json)
        return EXIT_OK
    if not arguments.name:
        names = _readable(store, names)
    report = build_report(store, names, arguments.all, Backoff(arguments.interval_s))
    if arguments.json:
        _out(json.dumps(report if not arguments.name else report[0], indent=2) + "\n")
    else:
        _out(format_report(report))
    return EXIT_OK


def _readable(store: Store, keys: list[str]) -> list[str]:
    """Return the keys whose files load; warn about the others, so one damaged experiment
    does not hide the rest."""
    readable = []
    for key in keys:
        try:
            store.load_experiment(key)
            store.load_saved_trials(key, summary=True)
        except StoreError as err:
            logger.warning("skipping %s: %s", key, err)
            continue
        readable.append(key)
    return readable


# --------------------------------------------------------------------- collect


def run_collect(arguments: argparse.Namespace, command: list[str]) -> int:
    store = _store(arguments)
    experiment, trials = merge_and_save(store, arguments.name, arguments.rebuild)
    text = format_rows(experiment, export_rows(experiment, trials), arguments.format, arguments.lists)
    if arguments.output:
        from hpcsweep.atomic import write_text_atomic

        path = Path(arguments.output)
        try:
            write_text_atomic(path, text)
        except OSError as err:
            raise StoreError(f"cannot write --output {path}: {err.strerror}; choose a writable path") from err
        print(f"wrote {len(trials)} trials to {path}", file=sys.stderr)
    else:
        _out(text)
    return EXIT_OK


# ------------------------------------------------------------------ list, info


def run_list(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.info import experiment_tree

    store = _store(arguments)
    lines = experiment_tree(store)
    if not lines:
        print(f"no experiment under {store.root}", file=sys.stderr)
        return EXIT_OK
    _out("\n".join(lines) + "\n")
    return EXIT_OK


def run_info(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.info import describe_experiment, format_info

    info = describe_experiment(_store(arguments), arguments.name)
    _out(json.dumps(info, indent=2) + "\n" if arguments.json else format_info(info))
    return EXIT_OK


# -------------------------------------------------------------- cancel, unlock


def run_cancel(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.cancel import cancel_experiment

    store = _store(arguments)
    cancelled = cancel_experiment(store, arguments.name)
    print(f"cancelled {len(cancelled)} jobs of {command_name(store, arguments.name)!r}: "
          f"{' '.join(cancelled) or 'none'}", file=sys.stderr)
    return EXIT_OK


def run_unlock(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.lock import WriterLock, unlock

    store = _store(arguments)
    store.load_experiment(arguments.name)
    lock = WriterLock(store.experiment_dir(arguments.name))
    holder = lock.describe_holder()
    if lock.holder_alive_here() and not arguments.force:
        raise UsageError(f"the writer lock of {command_name(store, arguments.name)!r} is held by {holder}, "
                         f"which is alive on this host; wait for it, or add --force")
    if unlock(store.experiment_dir(arguments.name)):
        print(f"removed the writer lock of {arguments.name!r} (held by {holder})", file=sys.stderr)
    else:
        print(f"experiment {arguments.name!r} has no writer lock", file=sys.stderr)
    return EXIT_OK


def run_report(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.report import run_report as report

    return int(report(_store(arguments), arguments))


def run_requeue(arguments: argparse.Namespace, command: list[str]) -> int:
    from hpcsweep.requeue import parse_statuses, requeue_trials

    store = _store(arguments)
    statuses = parse_statuses(arguments.status)
    overrides = {
        key: value for key, value in {
            "executor": arguments.executor, "parallelism": arguments.parallelism,
            "time_min": arguments.time_min, "partition": arguments.partition,
            "cpus_per_task": arguments.cpus_per_task, "gpus_per_task": arguments.gpus_per_task,
            "mem_gb": arguments.mem_gb, "account": arguments.account, "qos": arguments.qos,
            "constraint": arguments.constraint, "slurm_setup": arguments.slurm_setup,
            "slurm_args": dict(arguments.slurm_arg) if arguments.slurm_arg else None,
            "signal_delay_s": arguments.signal_delay_s,
        }.items() if value is not None
    }
    result = requeue_trials(store, arguments.name, statuses, arguments.trial, overrides, arguments.dry_run)
    for trial_id, why in result.skipped:
        print(f"skipped trial {trial_id}: {why}", file=sys.stderr)
    if not result.chosen:
        print(f"no trial of {arguments.name!r} to requeue", file=sys.stderr)
        return EXIT_OK
    if arguments.dry_run:
        _out("".join(f"{t['id']}  {t['status']}  {json.dumps(t['params'])}\n" for t in result.chosen))
        print(f"dry run: {len(result.chosen)} trials would be requeued", file=sys.stderr)
        return EXIT_OK
    assert result.batch is not None
    job_ids = [chunk["job_id"] for chunk in result.batch["chunks"]]
    _out(f"experiment: {arguments.name}\nrequeued: {len(result.chosen)}\njobs: {' '.join(job_ids)}\n")
    if arguments.wait:
        from hpcsweep.monitor import wait_for_trials

        counts = wait_for_trials(store, arguments.name, {t["id"] for t in result.chosen}, result.jobs,
                                 arguments.poll_s)
        return _report_wait(arguments.name, counts)
    return EXIT_OK
