"""Collecting results: merge the attempt files into the trial table and export it.

``collect`` is one of the store's writers: under the writer lock it saves the
merged trials, so later readers skip the attempt files it has merged.  It makes no
scheduler call.  An unreadable attempt file is skipped with a warning, so one bad
trial never stops the export, and every trial gets a row.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Sequence
from typing import Any

from hpcsweep.errors import UsageError
from hpcsweep.store import Store
from hpcsweep.trials import sort_key

logger = logging.getLogger(__name__)

FORMATS = ("table", "csv", "json")
LIST_FORMATS = ("tokens", "json")


def merge_and_save(store: Store, name: str, rebuild: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge every attempt into its trial, save the trial table, and return both.

    With ``rebuild``, first rebuild the trial table from the batch files, as after
    damage to trials.json.
    """
    experiment = store.load_experiment(name)
    if rebuild:
        with store.lock(name):
            count = store.rebuild_trials(name, experiment["id"])
        logger.warning("rebuilt the trial table of %s from its batches: %d trials", name, count)
    heartbeat_s = float(experiment["settings"].get("heartbeat_s", 60))
    if not os.access(store.experiment_dir(name), os.W_OK):
        # A teammate with read access may still export: merge in memory, save nothing.
        logger.warning("cannot write to %s; results are merged for this export but not saved",
                       store.experiment_dir(name))
        trials, _ = store.load_trials(name, heartbeat_s)
        return experiment, trials
    with store.lock(name):
        trials, files = store.load_trials(name, heartbeat_s)
        store.save_trials(name, trials, files)
    return experiment, trials


def load_view(store: Store, name: str, summary: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the experiment and its merged trials without writing anything.

    With ``summary``, each trial has only the fields needed to count statuses.
    """
    experiment = store.load_experiment(name)
    trials, _ = store.load_trials(name, float(experiment["settings"].get("heartbeat_s", 60)), summary)
    return experiment, trials


def export_rows(experiment: dict[str, Any], trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one JSON-ready row per trial, best objective first, no objective last."""
    ordered = sorted(trials, key=lambda trial: sort_key(trial, bool(experiment.get("maximize"))))
    return [
        {
            "id": trial["id"],
            "number": trial["number"],
            "status": trial["status"],
            "params": trial["params"],
            "objective": trial.get("objective"),
            "objective_name": trial.get("objective_name"),
            "results": trial.get("results"),
            "working_dir": trial["working_dir"],
            "exit_code": trial.get("exit_code"),
            "reason": trial.get("reason"),
            "attempts": trial.get("attempts", 0),
            "start_time": trial.get("start_time"),
            "end_time": trial.get("end_time"),
            "job_id": trial.get("job_id"),
            "stderr_tail": trial.get("stderr_tail"),
            "code_changed": trial.get("code_changed"),
        }
        for trial in ordered
    ]


def _cell(value: Any, list_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _param_columns(space: Sequence[str], rows: list[dict[str, Any]], list_format: str) -> list[str]:
    columns = []
    for name in space:
        widths = [len(row["params"][name]) for row in rows
                  if isinstance(row["params"].get(name), list)]
        if list_format == "tokens" and widths:
            columns += [f"{name}/{index}" for index in range(max(widths))]
        else:
            columns.append(name)
    return columns


def _param_value(params: dict[str, Any], column: str, space: Sequence[str]) -> Any:
    if column in params:
        return params[column]
    parent, _, index = column.rpartition("/")
    value = params.get(parent)
    if isinstance(value, list) and index.isdigit() and int(index) < len(value):
        return value[int(index)]
    return None


def format_rows(
    experiment: dict[str, Any], rows: list[dict[str, Any]], output_format: str, list_format: str = "json"
) -> str:
    """Write ``rows`` as ``table``, ``csv`` or ``json``.

    In CSV and tables, a list-valued parameter is one JSON cell with
    ``list_format="json"``, or one column per element (``/size/0``, ``/size/1``)
    with ``list_format="tokens"``.
    """
    if output_format not in FORMATS:
        raise UsageError(f"--format {output_format!r}: valid formats are {', '.join(FORMATS)}")
    if list_format not in LIST_FORMATS:
        raise UsageError(f"--lists {list_format!r}: valid values are {', '.join(LIST_FORMATS)}")
    if output_format == "json":
        return json.dumps(rows, indent=2) + "\n"

    space = list(experiment["space"])
    columns = _param_columns(space, rows, list_format)
    # Other results (accuracy, ...) follow the parameters, one column each.
    result_names = list(dict.fromkeys(
        name for row in rows for name in (row.get("results") or {})
        if name not in ("objective", row.get("objective_name"))
    ))
    header = ["id", "status", "objective", *columns, *result_names, "attempts", "exit_code", "reason",
              "code_changed"]
    table = [
        [row["id"], row["status"], _cell(row["objective"], list_format)]
        + [_cell(_param_value(row["params"], column, space), list_format) for column in columns]
        + [_cell((row.get("results") or {}).get(name), list_format) for name in result_names]
        + [str(row["attempts"]), _cell(row["exit_code"], list_format), _cell(row["reason"], list_format),
           "yes" if row.get("code_changed") else ""]
        for row in rows
    ]
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(table)
        return buffer.getvalue()
    return format_table(header, table)


def format_table(header: list[str], rows: list[list[str]], max_width: int = 60) -> str:
    def clip(text: str) -> str:
        text = text.replace("\n", " ")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[clip(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines) + "\n"


def best_trial(experiment: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    candidates = [t for t in trials if isinstance(t.get("objective"), (int, float))
                  and math.isfinite(t["objective"])]
    if not candidates:
        return None
    return min(candidates, key=lambda trial: sort_key(trial, bool(experiment.get("maximize"))))
