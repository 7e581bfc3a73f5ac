"""Search algorithms: they decide which parameter values the next trials try.

Every algorithm answers one question, :meth:`Algorithm.suggest`: given the space,
the trials already planned (with their results when they have finished), and a
number of new trials, which parameters should the new trials have?  Random and
grid search plan every trial up front, so they ignore results; an adaptive
algorithm reads ``history`` and is called again as trials finish.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hpcsweep.errors import UsageError
from hpcsweep.priors import Value
from hpcsweep.space import Space
from hpcsweep.trials import params_key

logger = logging.getLogger(__name__)

ALGORITHMS = ("random", "grid")


@dataclass(frozen=True)
class PastTrial:
    """A trial planned earlier, as an algorithm sees it: parameters, status, objective."""

    params: dict[str, Value]
    status: str = "new"
    objective: float | None = None


@dataclass
class Algorithm:
    """Base class of search algorithms.

    ``suggest`` must be deterministic for a given ``seed``, space and history, and
    must not return parameters equal to those of a trial in ``history``.  It may
    return fewer than ``count`` trials when the space is exhausted.
    """

    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    name = ""

    def suggest(self, space: Space, history: Sequence[PastTrial], count: int) -> list[dict[str, Value]]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, **self.settings}


@dataclass
class RandomSearch(Algorithm):
    """Independent samples from the priors, seeded by ``seed``."""

    name = "random"

    def suggest(self, space: Space, history: Sequence[PastTrial], count: int) -> list[dict[str, Value]]:
        # Each call restarts the generator and skips the draws that history used,
        # so planning 10 trials then 10 more gives the same 20 as planning 20 at once.
        rng = random.Random(self.seed)
        seen = {params_key(trial.params) for trial in history}
        suggestions: list[dict[str, Value]] = []
        misses = 0
        max_misses = 1000 + 10 * count + len(history)
        while len(suggestions) < count and misses < max_misses:
            params = space.sample(rng)
            key = params_key(params)
            if key in seen:
                misses += 1
                continue
            seen.add(key)
            suggestions.append(params)
        if len(suggestions) < count:
            logger.warning(
                "random search found only %d new distinct trials of %d requested; "
                "the space is too small for more", len(suggestions), count,
            )
        return suggestions


@dataclass
class GridSearch(Algorithm):
    """Every combination of the grid: all options of each choice, and ``grid_points``
    values of each continuous prior."""

    name = "grid"

    @property
    def grid_points(self) -> int:
        return int(self.settings.get("grid_points", 5))

    def grid_size(self, space: Space) -> int:
        size = 1
        for prior in space.values():
            size *= len(prior.grid(self.grid_points))
        return size

    def suggest(self, space: Space, history: Sequence[PastTrial], count: int) -> list[dict[str, Value]]:
        seen = {params_key(trial.params) for trial in history}
        axes = [prior.grid(self.grid_points) for prior in space.values()]
        suggestions: list[dict[str, Value]] = []
        for combination in itertools.product(*axes):
            if len(suggestions) >= count:
                break
            params = dict(zip(space.keys(), combination))
            if params_key(params) not in seen:
                suggestions.append(params)
        return suggestions


def make_algorithm(name: str, seed: int | None, grid_points: int = 5) -> Algorithm:
    """Build the algorithm called ``name``; raise :class:`UsageError` for an unknown one."""
    if name == "random":
        return RandomSearch(seed=seed)
    if name == "grid":
        if grid_points < 1:
            raise UsageError(f"--grid-points {grid_points}: must be at least 1")
        return GridSearch(seed=seed, settings={"grid_points": grid_points})
    raise UsageError(f"--algorithm {name!r}: unknown algorithm; valid algorithms are {', '.join(ALGORITHMS)}")


def algorithm_from_json(data: dict[str, Any]) -> Algorithm:
    settings = {key: value for key, value in data.items() if key not in ("name", "seed")}
    return make_algorithm(data["name"], data.get("seed"), int(settings.get("grid_points", 5)))
