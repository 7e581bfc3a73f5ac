"""The content of the report page: the overview that the template shows and the data of data.js.

Everything here is plain data.  The template escapes it (jinja2 autoescape) and
the page's script writes it into the document with ``textContent`` only, so a
parameter value, a result name or a stderr tail is always shown as text.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

from hpcsweep.cmdline import CommandLine
from hpcsweep.collect import best_trial, export_rows
from hpcsweep.errors import HpcsweepError
from hpcsweep.space import Space
from hpcsweep.trials import count_statuses

logger = logging.getLogger(__name__)

# Version of the layout of data.js; the page's script checks it.
DATA_FORMAT = 1
DATA_VARIABLE = "HPCSWEEP_REPORT"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"

# Characters that must not appear literally in a script file: "<" would let
# "</script>" or "<!--" end or change the script element if the text is ever
# inlined, and U+2028/U+2029 end a line in JavaScript before ES2019.
_SCRIPT_ESCAPES = (
    ("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"),
)


def encode_for_script(value: Any) -> str:
    """Return ``value`` as a JSON literal that is safe anywhere in a script.

    A float that JSON cannot hold (NaN, infinity), which only a hand-edited
    attempt file can bring in, becomes null.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite_only(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # The escaped characters occur only inside JSON strings, where \uXXXX means the same.
    for character, escape in _SCRIPT_ESCAPES:
        text = text.replace(character, escape)
    return text


def _finite_only(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_only(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite_only(item) for key, item in value.items()}
    return value


def format_time(timestamp: float | None) -> str:
    """Return a local time with its UTC offset, as in ``2024-05-01 14:03:12+02:00``."""
    if not timestamp:
        return ""
    moment = datetime.datetime.fromtimestamp(timestamp).astimezone()
    return moment.isoformat(sep=" ", timespec="seconds")


# ------------------------------------------------------------------ log links


class LogLinks:
    """Links from the report folder to each trial's ``stdout.log`` and ``stderr.log``.

    A link is relative when the report folder and the log file are both inside
    the store's root, as with the default folder, so that a copy of the whole
    root (rsync) keeps its links.  Otherwise it is an absolute ``file://`` URL.
    A trial's working directory is looked up under the experiment's ``trials/``
    folder first, so that a store copied to another path still finds its logs.
    """

    def __init__(self, output_dir: Path, root: Path, experiment_dir: Path) -> None:
        self.output_dir = output_dir
        self.root = root
        self.output_in_root = is_inside(output_dir, root)
        self.experiment_dir = experiment_dir
        self.trials_dir = experiment_dir / "trials"
        try:
            self.local_dirs = {entry.name for entry in os.scandir(self.trials_dir) if entry.is_dir()}
        except (FileNotFoundError, NotADirectoryError):
            self.local_dirs = set()
        # The links of 10,000 trials are built with string operations, which take
        # a third of the time of pathlib here.
        self._trials_prefix = str(self.trials_dir) + os.sep
        self._relative_trials_url = None
        if self.output_in_root and is_inside(self.trials_dir, root):
            relative = Path(os.path.relpath(self.trials_dir, output_dir)).as_posix()
            self._relative_trials_url = quote(relative) + "/"

    def working_dir(self, trial: dict[str, Any]) -> Path:
        return Path(self._working_dir(trial))

    def _working_dir(self, trial: dict[str, Any]) -> str:
        trial_id = str(trial["id"])
        if trial_id in self.local_dirs:
            return self._trials_prefix + trial_id
        return str(trial["working_dir"])

    def log_links(self, trial: dict[str, Any]) -> dict[str, str | None]:
        """Return the URLs of the trial's ``stdout`` and ``stderr`` logs; None for a missing file."""
        working_dir = self._working_dir(trial)
        return {
            "stdout": self.link(os.path.join(working_dir, STDOUT_FILE)),
            "stderr": self.link(os.path.join(working_dir, STDERR_FILE)),
        }

    def link(self, path: str) -> str | None:
        """Return the URL of ``path`` from the report folder, or None if the file does not exist."""
        if not os.path.isfile(path):
            return None
        if self._relative_trials_url is not None and path.startswith(self._trials_prefix):
            below = path[len(self._trials_prefix):].replace(os.sep, "/")
            return self._relative_trials_url + quote(below)
        if self.output_in_root and is_inside(Path(path), self.root):
            return quote(Path(os.path.relpath(path, self.output_dir)).as_posix())
        return "file://" + quote_from_bytes(os.fsencode(os.path.abspath(path)))


def is_inside(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory)
    except ValueError:
        return False
    return True


# -------------------------------------------------------------------- overview


def build_overview(
    experiment: dict[str, Any], trials: list[dict[str, Any]], links: LogLinks, generated_time: float
) -> dict[str, Any]:
    """Return the context of the page template: the experiment, its counts and its best trial."""
    counts = count_statuses(trials)
    executor = {key: value for key, value in experiment.get("executor", {}).items()
                if value not in (None, [], {})}
    try:
        space = [(name, prior.expression()) for name, prior in Space.from_json(experiment["space"]).items()]
    except HpcsweepError as err:
        logger.warning("cannot read the search space of %s: %s", experiment["name"], err)
        space = [(name, json.dumps(item)) for name, item in experiment["space"].items()]

    best = best_trial(experiment, trials)
    best_context = None
    if best is not None:
        best_context = {
            "id": best["id"],
            "number": best["number"],
            "objective": best["objective"],
            "params": json.dumps(best["params"], ensure_ascii=False),
            "command": render_trial_command(experiment, best, links.experiment_dir),
            "working_dir": str(links.working_dir(best)),
            **links.log_links(best),
        }

    return {
        "name": experiment["name"],
        "id": experiment.get("id", ""),
        "version": experiment.get("version", ""),
        "user": experiment.get("user", ""),
        "hpcsweep_version": experiment.get("hpcsweep_version", ""),
        "submitted": format_time(experiment.get("submit_time")),
        "submit_dir": experiment.get("submit_dir", ""),
        "command": experiment.get("command_line", ""),
        "script": experiment.get("script") or "",
        "vcs": _describe_vcs(experiment.get("vcs")),
        "space": space,
        "algorithm": json.dumps(experiment.get("algorithm")),
        "max_trials": experiment.get("max_trials", ""),
        "direction": "maximize" if experiment.get("maximize") else "minimize",
        "executor": json.dumps(executor),
        "total": len(trials),
        "counts": [(status, count) for status, count in counts.items()],
        "best": best_context,
        "generated": format_time(generated_time),
    }


def _describe_vcs(vcs: dict[str, Any] | None) -> dict[str, Any]:
    if not vcs or vcs.get("type") != "git":
        reason = (vcs or {}).get("reason") or "the version-control state was not recorded"
        return {"git": False, "reason": reason}
    return {
        "git": True,
        "commit": vcs.get("commit") or "(no commit yet)",
        "branch": vcs.get("branch") or "detached HEAD",
        "dirty": bool(vcs.get("dirty")),
        "diff_sha256": vcs.get("diff_sha256") or "",
        "root": vcs.get("root") or "",
    }


def render_trial_command(experiment: dict[str, Any], trial: dict[str, Any], experiment_dir: Path) -> str:
    """Return the shell-quoted command that ran ``trial``, or a note on why it cannot be shown."""
    try:
        command = CommandLine.from_json(experiment["parser_state"])
    except (HpcsweepError, KeyError, TypeError) as err:
        return f"(cannot rebuild the command from the saved parser state: {err})"
    working_dir = trial["working_dir"]
    placeholders = {
        "{trial.id}": trial["id"],
        "{trial.working_dir}": working_dir,
        "{exp.name}": experiment["name"],
        "{exp.version}": str(experiment.get("version", "")),
        "{exp.working_dir}": str(experiment_dir),
    }
    config_path = None
    if command.template is not None:
        config_path = str(Path(working_dir) / command.template_filename())
    try:
        return shlex.join(command.render(trial["params"], placeholders, config_path))
    except (KeyError, TypeError, ValueError) as err:
        return f"(cannot render the command of trial {trial['id']}: {err})"


# ------------------------------------------------------------------- data.js


def build_page_data(
    experiment: dict[str, Any], trials: list[dict[str, Any]], links: LogLinks, generated_time: float
) -> dict[str, Any]:
    """Return what data.js carries: the dimensions of the plots and one record per trial."""
    rows = export_rows(experiment, trials)
    result_names: dict[str, None] = {}
    records = []
    for row in rows:
        results = row["results"] if isinstance(row["results"], dict) else {}
        for name in results:
            if name != "objective":
                result_names.setdefault(name, None)
        records.append({
            "id": row["id"],
            "number": row["number"],
            "status": row["status"],
            "objective": row["objective"] if _is_number(row["objective"]) else None,
            "params": row["params"],
            "results": {name: value for name, value in results.items() if name != "objective"},
            "attempts": row["attempts"],
            "exit_code": row["exit_code"],
            "reason": row["reason"],
            "stderr_tail": row["stderr_tail"],
            "job_id": row["job_id"],
            "start_time": row["start_time"],
            "end_time": row["end_time"],
            **links.log_links(row),
        })
    return {
        "format": DATA_FORMAT,
        "generated_time": generated_time,
        "experiment": {"name": experiment["name"], "maximize": bool(experiment.get("maximize"))},
        "dimensions": build_dimensions(experiment["space"]),
        "result_names": list(result_names),
        "trials": records,
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def build_dimensions(space: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the plotted dimensions: one per prior, one per element of a prior with a shape.

    ``log`` is true for a ``loguniform`` prior, whose axes are logarithmic, and
    ``options`` lists the categories of a ``choices`` prior in their given order.
    """
    dimensions = []
    for name, prior in space.items():
        kind = prior.get("kind", "")
        base = {
            "kind": kind,
            "log": kind == "loguniform",
            "categorical": kind == "choices",
            "options": list(prior.get("options", [])) if kind == "choices" else None,
        }
        shape = prior.get("shape")
        if isinstance(shape, int) and shape > 0:
            for index in range(shape):
                dimensions.append(dict(base, name=f"{name}/{index}", param=name, index=index))
        else:
            dimensions.append(dict(base, name=name, param=name, index=None))
    return dimensions
