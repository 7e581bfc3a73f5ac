"""Reading the results file that a trial's script writes.

Two forms are accepted, both JSON:

* Orion's list, ``[{"name": "loss", "type": "objective", "value": 0.1}, ...]``, with
  exactly one entry of type ``objective``;
* a mapping, ``{"objective": 0.1, "accuracy": 0.97}``, whose key ``objective`` is
  the objective.

The objective must be a finite number.  Other results are kept as they are, except
that non-finite numbers, which JSON cannot store, become strings such as ``"nan"``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class InvalidResultsError(ValueError):
    """The results file is missing, empty or malformed; the message gives the reason."""


@dataclass(frozen=True)
class TrialResults:
    objective: float
    objective_name: str
    results: dict[str, Any]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    return value


def _finite_objective(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidResultsError(f"the objective {where} is {value!r}, not a number")
    try:
        objective = float(value)
    except OverflowError:  # an integer too large for a float
        raise InvalidResultsError(f"the objective {where} is an integer too large for a float") from None
    if not math.isfinite(objective):
        raise InvalidResultsError(f"the objective {where} is {value!r}, not a finite number")
    return objective


def parse_results(data: Any) -> TrialResults:
    """Validate decoded results; raise :class:`InvalidResultsError` naming the fault."""
    if isinstance(data, dict):
        if "objective" not in data:
            raise InvalidResultsError(
                f"the results mapping has no key 'objective' (keys: {', '.join(map(str, data)) or 'none'})"
            )
        objective = _finite_objective(data["objective"], "'objective'")
        results = {str(key): _clean(value) for key, value in data.items()}
        return TrialResults(objective, "objective", results)

    if isinstance(data, list):
        objectives = []
        results = {}
        for index, item in enumerate(data):
            if not isinstance(item, dict) or "name" not in item or "value" not in item:
                raise InvalidResultsError(
                    f"entry {index} of the results list is {item!r}; expected "
                    f"{{'name': ..., 'type': ..., 'value': ...}}"
                )
            results[str(item["name"])] = _clean(item["value"])
            if item.get("type") == "objective":
                objectives.append(item)
        if len(objectives) != 1:
            raise InvalidResultsError(
                f"the results list has {len(objectives)} entries of type 'objective'; expected exactly one"
            )
        name = str(objectives[0]["name"])
        return TrialResults(_finite_objective(objectives[0]["value"], repr(name)), name, results)

    raise InvalidResultsError(f"the results file contains a {type(data).__name__}, expected a list or a mapping")


# Results travel into the trial table, collect and the report: a few numbers are
# expected, so a file this large is a mistake (a dumped array, say), not results.
MAX_RESULTS_BYTES = 1_000_000


def read_results(path: Path) -> TrialResults:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidResultsError(f"the script wrote no results file ({path.name})") from None
    if size > MAX_RESULTS_BYTES:
        raise InvalidResultsError(
            f"the results file has {size:,} bytes, above the limit of {MAX_RESULTS_BYTES:,}; "
            f"report a few numbers and save large outputs to other files"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidResultsError(f"the script wrote no results file ({path.name})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidResultsError(f"cannot read the results file: {err}") from err
    if not text.strip():
        raise InvalidResultsError("the results file is empty")
    try:
        data = json.loads(text)
    except ValueError as err:  # invalid JSON, or an integer with too many digits for Python
        raise InvalidResultsError(f"the results file is not valid JSON ({err})") from None
    except RecursionError:
        raise InvalidResultsError("the results file nests lists or mappings too deeply") from None
    return parse_results(data)
