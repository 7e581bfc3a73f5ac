"""Trials added by hand: ``hpcsweep insert`` and ``submit --pending-only``.

An inserted trial is validated against the experiment's search space, recorded as
``new`` without a batch, and submitted by ``submit --pending-only`` or by the next
``submit`` of the experiment.
"""

from __future__ import annotations

import ast
import json
import logging
from typing import Any

from hpcsweep.errors import UsageError
from hpcsweep.priors import Choices, Fidelity, Prior, Value
from hpcsweep.space import Space
from hpcsweep.store import Store
from hpcsweep.submission import ExecutorOptions, make_batch, submit_batch
from hpcsweep.trials import make_trial_id, new_trial

logger = logging.getLogger(__name__)


def parse_value(text: str) -> Value:
    """Read a value given on the command line: a number, boolean, null, list, or else a string."""
    try:
        value = json.loads(text)
    except ValueError:
        pass
    else:
        if not isinstance(value, dict):
            return value
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if isinstance(value, tuple):
        value = list(value)
    return value if isinstance(value, (int, float, str, bool, list)) or value is None else text


def parse_assignments(tokens: list[str]) -> dict[str, Value]:
    """Read ``--lr 0.01 --/layers/1/width=64`` into ``{"/lr": 0.01, "/layers/1/width": 64}``."""
    values: dict[str, Value] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("-"):
            raise UsageError(f"insert: expected a parameter such as --lr, got {token!r}")
        option, separator, text = token.partition("=")
        if not separator:
            if index + 1 >= len(tokens):
                raise UsageError(f"insert: {option} has no value; write {option} VALUE")
            index += 1
            text = tokens[index]
        name = "/" + option.lstrip("-").lstrip("/")
        if name in values:
            raise UsageError(f"insert: {name} is given twice")
        values[name] = parse_value(text)
        index += 1
    if not values:
        raise UsageError("insert: no parameter given; write the values as --lr 0.01 --/layers/1/width 64")
    return values


def _integer(value: Value) -> Value:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integer(item) for item in value]
    return value


def _coerce(prior: Prior, value: Value) -> Value:
    """Write integral floats as integers where the prior draws integers (3.0 becomes 3), so
    that an inserted trial renders, hashes and deduplicates like a planned one."""
    if getattr(prior, "discrete", False):
        return _integer(value)
    if isinstance(prior, Choices) and not any(isinstance(option, float) for option in prior.options):
        return _integer(value)
    return value


def insert_trial(store: Store, key: str, values: dict[str, Value]) -> dict[str, Any]:
    """Validate ``values`` and record them as a new trial of the experiment ``key``."""
    experiment = store.load_experiment(key)
    space = Space.from_json(experiment["space"])
    params = dict(values)
    for name, prior in space.items():
        if name not in params and isinstance(prior, Fidelity):
            params[name] = prior.high
    params = {name: _coerce(space[name], value) if name in space else value for name, value in params.items()}
    space.check_params(params)
    params = {name: params[name] for name in space}  # the space's order, as planned trials have

    heartbeat_s = float(experiment["settings"].get("heartbeat_s", 60))
    with store.lock(key):
        trials, files = store.load_trials(key, heartbeat_s)
        trial_id = make_trial_id(experiment["id"], params)
        if any(trial["id"] == trial_id for trial in trials):
            raise UsageError(f"insert: trial {trial_id} already has these values; nothing was added")
        trial = new_trial(experiment["id"], len(trials), params, str(store.root / key / "trials" / trial_id))
        trial["inserted"] = True
        trials.append(trial)
        store.save_trials(key, trials, files)
    logger.info("inserted trial %s into %s", trial_id, key)
    return trial


def submit_pending(store: Store, key: str) -> tuple[dict[str, Any] | None, list[Any]]:
    """Submit every trial of ``key`` that was never submitted; return the batch and jobs."""
    experiment = store.load_experiment(key)
    options = ExecutorOptions(**experiment["executor"])
    heartbeat_s = float(experiment["settings"].get("heartbeat_s", 60))
    with store.lock(key):
        trials, files = store.load_trials(key, heartbeat_s)
        pending = [t for t in trials if t.get("batch") is None and t.get("status") == "new"]
        if not pending:
            return None, []
        batch = make_batch(store.next_batch_id(key), pending, options)
        for trial in pending:
            trial.update(batch=batch["id"], submitted_time=batch["created_time"])
        store.save_batch(key, batch)
        store.save_trials(key, trials, files)
        jobs = submit_batch(store.root / key, key, batch, options, lambda b: store.save_batch(key, b))
    return batch, jobs
