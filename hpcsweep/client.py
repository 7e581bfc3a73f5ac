"""Helpers for trial scripts: write the results file that hpcsweep reads.

This module imports only the standard library, so a script pays nothing for it::

    from hpcsweep.client import report_objective
    report_objective(validation_loss)

Both hpcsweep and Orion set the path of the results file in the environment
(``HPCSWEEP_RESULTS_PATH`` or ``ORION_RESULTS_PATH``).  Outside a trial, where
neither is set, the functions only print the results.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from typing import Any

RESULTS_VARIABLES = ("HPCSWEEP_RESULTS_PATH", "ORION_RESULTS_PATH")


def _results_path() -> str | None:
    for variable in RESULTS_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    return None


def report_results(results: list[dict[str, Any]]) -> None:
    """Write ``results``, a list of ``{"name", "type", "value"}`` entries, as the trial's results.

    Exactly one entry must have type ``objective``, with a finite number as value.
    The file is replaced atomically, so calling this twice keeps the last results.
    """
    objectives = [item for item in results if item.get("type") == "objective"]
    if len(objectives) != 1:
        raise ValueError(f"results need exactly one entry of type 'objective', got {len(objectives)}")
    value = objectives[0].get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"the objective must be a finite number, got {value!r}")

    path = _results_path()
    text = json.dumps(results)
    if path is None:
        print(f"hpcsweep results (no HPCSWEEP_RESULTS_PATH set): {text}", file=sys.stderr)
        return
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".results.", dir=directory)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def report_objective(objective: float, name: str = "objective", **statistics: Any) -> None:
    """Write ``objective`` (minimized unless the experiment maximizes) and optional statistics."""
    results: list[dict[str, Any]] = [{"name": name, "type": "objective", "value": objective}]
    results += [{"name": key, "type": "statistic", "value": value} for key, value in statistics.items()]
    report_results(results)
