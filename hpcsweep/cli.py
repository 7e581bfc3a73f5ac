"""The ``hpcsweep`` command.

Data (tables, CSV, JSON, ids) goes to stdout, progress and diagnostics to stderr.
Errors from the library are printed here, once, as ``Error: ...``, and the exit
status is the error's code: 0 success, 1 failure, 2 usage error.  Heavy modules
(submitit, gitpython, jinja2) are imported only by the commands that need them, so
``--help`` and ``status`` start fast on a loaded login node.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import Any

from hpcsweep import __version__
from hpcsweep.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, HpcsweepError, UsageError

logger = logging.getLogger("hpcsweep")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with status 2."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}; see '{self.prog} --help'")


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


DESCRIPTIONS = {
    "status": "Print the counts of trials by status, from the store; with --all, one line per trial. "
              "Trials whose heartbeat is late are checked with one squeue call.",
    "collect": "Merge the results that array tasks wrote into the trial table and export every trial, "
               "best objective first. Makes no scheduler call.",
    "list": "List the experiments under the root, versions and branches indented under their parent.",
    "info": "Print an experiment's metadata, git state, search space, algorithm, scheduler options, "
            "counts by status and best trial.",
    "cancel": "Cancel the experiment's Slurm arrays (scancel) or stop its local jobs. Running trials "
              "are recorded as interrupted; trials that never started stay new and can be requeued.",
    "report": "Write a static HTML report that opens from file:// with no server; --serve serves it "
              "on 127.0.0.1 for port forwarding.",
    "unlock": "Remove the writer lock of an experiment, left by a process that died while writing.",
}
NAME_HELP = "experiment name; its latest version, or NAME@vN for version N"


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS keeps a subcommand from resetting what was given before it (hpcsweep --root X status).
    common = _Parser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS,
                        help="directory of the store (default: $HPCSWEEP_ROOT or ./hpcsweep-runs)")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="log more on stderr")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="log only errors on stderr")

    parser = _Parser(prog="hpcsweep", description="Hyperparameter sweeps on Slurm job arrays.",
                     parents=[common])
    parser.add_argument("--version", action="version", version=f"hpcsweep {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    submit = commands.add_parser(
        "submit", parents=[common], help="plan a sweep and submit it as job arrays",
        usage="hpcsweep submit -n NAME [options] -- COMMAND [ARGS...]",
        description="Plan the trials of the command after '--' and submit them. "
                    "Write priors into the command as --name~'loguniform(1e-5, 1.0)'.",
    )
    submit.add_argument("-n", "--name", required=True, help="experiment name")
    versions = submit.add_argument_group("versions and code")
    versions.add_argument("--new-version", action="store_true",
                          help="start the next version of an existing experiment whose setup changed")
    versions.add_argument("--branch", metavar="NEW_NAME",
                          help="start a new experiment NEW_NAME whose parent is the experiment -n")
    versions.add_argument("--code-change", choices=["warn", "fail", "ignore"], default="warn",
                          help="when a trial starts with code other than at submission: warn (default) "
                               "and run, fail the trial, or ignore")
    versions.add_argument("--snapshot-code", action="store_true",
                          help="copy the files git tracks in the script's repository and run trials from the copy")
    versions.add_argument("--snapshot-limit-mb", type=_finite, default=200.0,
                          help="largest snapshot accepted, in MB (default 200)")
    submit.add_argument("--max-trials", type=int, default=10, help="number of trials (default 10)")
    submit.add_argument("--algorithm", default="random", help="random (default) or grid")
    submit.add_argument("--seed", type=int, default=None, help="seed of the random search")
    submit.add_argument("--grid-points", type=int, default=5,
                        help="grid values of each continuous prior (default 5)")
    submit.add_argument("--maximize", action="store_true", help="maximize the objective (default: minimize)")
    submit.add_argument("--config-option", default="--config",
                        help="option of the command that names a configuration template (default --config)")
    submit.add_argument("--render", action="append", default=[], type=_key_value, metavar="PARAM=MODE",
                        help="how a parameter reaches the script: auto, value, equals, switch, tokens, json, comma")
    submit.add_argument("--interrupt-code", type=int, default=130,
                        help="exit status with which a script reports that it was interrupted (default 130)")
    submit.add_argument("--heartbeat-s", type=_finite, default=60.0,
                        help="seconds between heartbeats of a running trial (default 60)")
    submit.add_argument("--grace-s", type=_finite, default=60.0,
                        help="seconds a stopped script gets to exit before SIGKILL (default 60)")
    submit.add_argument("--forward-signal", default="SIGTERM",
                        help="signal sent to the script's process group when the task must stop (default SIGTERM)")
    submit.add_argument("--max-requeues", type=int, default=3,
                        help="automatic requeues after timeouts or interrupt-code exits (default 3)")
    submit.add_argument("--max-preemptions", type=int, default=20,
                        help="automatic requeues after preemptions or node failures (default 20)")
    _add_scheduler_options(submit.add_argument_group("scheduler"), with_defaults=True)
    flow = submit.add_argument_group("flow")
    flow.add_argument("--dry-run", action="store_true", help="print the first trials, submit nothing")
    flow.add_argument("--show", type=int, default=None, metavar="N",
                      help="print the first N trials, as --dry-run does (default 3 with --dry-run)")
    flow.add_argument("--wait", action="store_true", help="wait until every trial has ended")
    flow.add_argument("--poll-s", type=_positive, default=2.0, help="seconds between checks with --wait (default 2)")
    flow.add_argument("--resume", action="store_true",
                      help="submit the arrays of the experiment that a failed sbatch left out")
    flow.add_argument("--pending-only", action="store_true",
                      help="submit only the trials never submitted, such as those added by insert")

    status = commands.add_parser("status", parents=[common], help="counts of trials by status")
    status.add_argument("-n", "--name", help="experiment (default: every experiment); NAME@vN for an older version")
    status.add_argument("--all", action="store_true", help="one line per trial")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--watch", action="store_true", help="print the counts again every --interval-s "
                                                             "seconds until every trial has ended")
    status.add_argument("--interval-s", type=_positive, default=10.0,
                        help="seconds between rounds of --watch and between scheduler queries (default 10)")

    collect = commands.add_parser("collect", parents=[common], help="gather and export results")
    collect.add_argument("-n", "--name", required=True, help=NAME_HELP)
    collect.add_argument("--format", default="table", choices=["table", "csv", "json"],
                         help="table (default), csv or json")
    collect.add_argument("--output", help="write to this file instead of stdout")
    collect.add_argument("--rebuild", action="store_true",
                         help="rebuild a damaged trial table from the batch and attempt files first")
    collect.add_argument("--lists", default="json", choices=["json", "tokens"],
                         help="list-valued parameters in CSV: json (one cell, default) or tokens (a column each)")

    commands.add_parser("list", parents=[common], help="list experiments")

    info = commands.add_parser("info", parents=[common], help="describe an experiment")
    info.add_argument("-n", "--name", required=True, help=NAME_HELP)
    info.add_argument("--json", action="store_true", help="print JSON")

    cancel = commands.add_parser("cancel", parents=[common], help="cancel the jobs of an experiment")
    cancel.add_argument("-n", "--name", required=True, help=NAME_HELP)

    insert = commands.add_parser(
        "insert", parents=[common], help="add trials with given parameter values", allow_abbrev=False,
        usage="hpcsweep insert -n NAME --PARAM VALUE [--PARAM VALUE ...]",
        description="Add one trial whose parameters are given as --lr 0.01, or --/lr 0.01 where a "
                    "name could be taken for an option of insert (--/root 2, --/n 3). Values are read "
                    "as Python literals: 64 is an integer, [4, 8] a list, True a boolean, and anything "
                    "else a string ('\"1\"' for the string 1). submit --pending-only, or the next "
                    "submit, runs it.",
    )
    insert.add_argument("-n", "--name", required=True, help=NAME_HELP)

    requeue = commands.add_parser(
        "requeue", parents=[common], help="submit interrupted, lost or chosen trials again",
        description="Submit the chosen trials again as a new array, with the experiment's "
                    "scheduler options unless overridden. Trials already pending or running are skipped.",
    )
    requeue.add_argument("-n", "--name", required=True, help=NAME_HELP)
    requeue.add_argument("--status", default="interrupted,lost",
                         help="statuses to requeue, comma-separated: new, interrupted, lost, broken "
                              "(default interrupted,lost)")
    requeue.add_argument("--trial", action="append", default=[], metavar="ID",
                         help="requeue this trial, whatever its status (repeatable)")
    requeue.add_argument("--dry-run", action="store_true", help="list the trials, submit nothing")
    requeue.add_argument("--wait", action="store_true", help="wait until every requeued trial has ended")
    requeue.add_argument("--poll-s", type=_positive, default=2.0, help="seconds between checks with --wait (default 2)")
    _add_scheduler_options(requeue.add_argument_group("scheduler overrides"), with_defaults=False)

    report = commands.add_parser("report", parents=[common], help="write a static HTML report of an experiment")
    report.add_argument("-n", "--name", required=True, help=NAME_HELP)
    report.add_argument("--output", help="report folder (default: <root>/<experiment>/report/)")
    report.add_argument("--serve", action="store_true", help="serve the folder on 127.0.0.1 after writing it")
    report.add_argument("--port", type=int, default=8000, help="port of --serve (default 8000)")

    unlock = commands.add_parser("unlock", parents=[common], help="remove a stale writer lock")
    unlock.add_argument("-n", "--name", required=True, help=NAME_HELP)
    unlock.add_argument("--force", action="store_true", help="remove the lock even if its holder is alive")
    for name, subparser in commands.choices.items():
        subparser.description = subparser.description or DESCRIPTIONS.get(name)
    return parser


def _add_scheduler_options(group: Any, with_defaults: bool) -> None:
    """Add the options of where and how tasks run; without defaults, an unset option is None
    (``requeue`` then keeps the experiment's value)."""

    def default(value: Any) -> Any:
        return value if with_defaults else None

    def unit(text: str, value: Any) -> str:
        return f"{text} (default {value})" if with_defaults else f"{text} (default: the experiment's)"

    group.add_argument("--executor", choices=["slurm", "local"], default=None,
                       help=unit("where trials run", "slurm if sbatch is on PATH, else local"))
    group.add_argument("--parallelism", "--throttle", type=int, default=default(16),
                       help=unit("trials running at once, over all arrays", 16))
    group.add_argument("--time", type=int, default=default(60), dest="time_min",
                       help=unit("time limit of each trial, in minutes", 60))
    group.add_argument("--partition", help="Slurm partition")
    group.add_argument("--cpus-per-task", type=int, help="CPUs of each array task")
    group.add_argument("--gpus-per-task", type=int, help="GPUs of each array task")
    group.add_argument("--mem-gb", type=_finite, help="memory of each array task, in GB")
    group.add_argument("--account", help="Slurm account to charge")
    group.add_argument("--qos", help="Slurm quality of service")
    group.add_argument("--constraint", help="Slurm node features required")
    group.add_argument("--slurm-setup", action="append", default=default([]), metavar="LINE",
                       help="shell line run before each task, e.g. 'module load cuda' (repeatable)")
    group.add_argument("--slurm-arg", action="append", default=default([]), type=_key_value, metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. mail-type=END (repeatable)")
    group.add_argument("--signal-delay-s", type=int, default=default(90),
                       help=unit("seconds before the time limit at which Slurm warns the task", 90))


def _configure_logging(verbose: int, quiet: bool) -> None:
    if quiet:
        level = logging.ERROR
    elif verbose > 1:
        level = logging.DEBUG
    elif verbose:
        level = logging.INFO
    else:
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("hpcsweep")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1:]
    try:
        arguments, extra = build_parser().parse_known_args(argv)
        if extra and arguments.command != "insert":
            hint = ("; write the command after '--', as in: hpcsweep submit -n NAME -- python train.py"
                    if arguments.command == "submit" else f"; see 'hpcsweep {arguments.command} --help'")
            raise UsageError(f"hpcsweep {arguments.command}: unrecognized arguments: {' '.join(extra)}{hint}")
        arguments.extra = extra
        arguments.root = getattr(arguments, "root", None)
        _configure_logging(getattr(arguments, "verbose", 0), getattr(arguments, "quiet", False))
        if arguments.command is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USAGE
        if command and arguments.command != "submit":
            raise UsageError(f"'{arguments.command}' takes no command after '--'")
        from hpcsweep import commands as implementations

        handler = getattr(implementations, f"run_{arguments.command}")
        return int(handler(arguments, command))
    except HpcsweepError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        # A file-system failure that no command anticipated: one line, not a traceback.
        where = f" ({err.filename})" if err.filename else ""
        print(f"Error: {err.strerror or err}{where}; check the path and its permissions", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader of stdout went away (| head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
