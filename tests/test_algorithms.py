"""Random and grid search: reproducibility, extension, grid size and spacing."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from hpcsweep.algorithms import (
    GridSearch,
    PastTrial,
    RandomSearch,
    algorithm_from_json,
    make_algorithm,
    params_key,
)
from hpcsweep.errors import UsageError
from hpcsweep.prior_syntax import parse_prior
from hpcsweep.space import Space


def space_of(**expressions: str) -> Space:
    return Space({f"/{name}": parse_prior(expression) for name, expression in expressions.items()})


MIXED = space_of(
    lr="loguniform(1e-5, 1)",
    opt="choices(['sgd', 'adam'])",
    layers="uniform(1, 8, discrete=True)",
    size="uniform(1, 9, shape=3, discrete=True)",
    amp="choices([True, False])",
)


def history_of(params: list[dict[str, object]]) -> list[PastTrial]:
    # The store gives back JSON, so history goes through JSON as well.
    return [PastTrial(json.loads(json.dumps(item))) for item in params]


# ------------------------------------------------------------------------ random


def test_random_same_seed_same_trials() -> None:
    first = RandomSearch(seed=42).suggest(MIXED, [], 20)
    second = RandomSearch(seed=42).suggest(MIXED, [], 20)
    assert first == second
    assert len(first) == 20


def test_random_other_seed_other_trials() -> None:
    assert RandomSearch(seed=1).suggest(MIXED, [], 5) != RandomSearch(seed=2).suggest(MIXED, [], 5)


def test_random_extend_equals_one_plan() -> None:
    algorithm = RandomSearch(seed=7)
    first = algorithm.suggest(MIXED, [], 10)
    more = algorithm.suggest(MIXED, history_of(first), 10)
    assert first + more == algorithm.suggest(MIXED, [], 20)


def test_random_extend_small_space() -> None:
    # Duplicates are drawn and skipped here, and must be skipped the same way again.
    space = space_of(a="choices([1, 2, 3])", b="choices(['x', 'y'])")
    algorithm = RandomSearch(seed=11)
    first = algorithm.suggest(space, [], 3)
    more = algorithm.suggest(space, history_of(first), 2)
    assert first + more == algorithm.suggest(space, [], 5)


def test_random_no_duplicates() -> None:
    space = space_of(a="choices([1, 2, 3])", b="choices(['x', 'y'])")
    trials = RandomSearch(seed=0).suggest(space, [], 6)
    assert len({params_key(params) for params in trials}) == 6


def test_random_exhausted_space(caplog: pytest.LogCaptureFixture) -> None:
    space = space_of(a="choices([1, 2])")
    trials = RandomSearch(seed=0).suggest(space, [], 5)
    assert sorted(params["/a"] for params in trials) == [1, 2]
    assert "found only 2 new distinct trials of 5" in caplog.text


def test_random_samples_inside_priors() -> None:
    for params in RandomSearch(seed=3).suggest(MIXED, [], 50):
        MIXED.check_params(params)


# -------------------------------------------------------------------------- grid


def test_grid_product_of_choices() -> None:
    space = space_of(opt="choices(['sgd', 'adam'])", act="choices(['relu', 'gelu', 'tanh'])")
    trials = GridSearch(settings={"grid_points": 5}).suggest(space, [], 100)
    pairs = [(params["/opt"], params["/act"]) for params in trials]
    assert pairs == list(itertools.product(["sgd", "adam"], ["relu", "gelu", "tanh"]))


def test_grid_continuous_points() -> None:
    space = space_of(x="uniform(0, 1)", opt="choices(['a', 'b'])")
    algorithm = GridSearch(settings={"grid_points": 3})
    trials = algorithm.suggest(space, [], 100)
    assert algorithm.grid_size(space) == 6
    assert len(trials) == 6
    assert sorted({params["/x"] for params in trials}) == [0, 0.5, 1]


def test_grid_never_exceeds_grid() -> None:
    space = space_of(x="uniform(0, 1)")
    trials = GridSearch(settings={"grid_points": 4}).suggest(space, [], 1000)
    assert len(trials) == 4


def test_grid_loguniform_log_spaced() -> None:
    trials = GridSearch(settings={"grid_points": 4}).suggest(space_of(lr="loguniform(1e-4, 1e-1)"), [], 10)
    values = [params["/lr"] for params in trials]
    assert values[0] == 1e-4
    assert values[-1] == 1e-1
    ratios = [values[i + 1] / values[i] for i in range(3)]
    assert ratios == pytest.approx([10, 10, 10])


def test_grid_discrete_dedup() -> None:
    trials = GridSearch(settings={"grid_points": 10}).suggest(space_of(n="uniform(1, 3, discrete=True)"), [], 10)
    assert [params["/n"] for params in trials] == [1, 2, 3]


def test_grid_extend_equals_one_plan() -> None:
    space = space_of(x="uniform(0, 1)", opt="choices(['a', 'b', 'c'])")
    algorithm = GridSearch(settings={"grid_points": 5})
    first = algorithm.suggest(space, [], 6)
    more = algorithm.suggest(space, history_of(first), 6)
    assert first + more == algorithm.suggest(space, [], 12)
    rest = algorithm.suggest(space, history_of(first + more), 100)
    assert len(first + more + rest) == 15


def test_grid_fidelity_at_high() -> None:
    space = space_of(epochs="fidelity(1, 81, base=3)", x="uniform(0, 1)")
    trials = GridSearch(settings={"grid_points": 2}).suggest(space, [], 10)
    assert [params["/epochs"] for params in trials] == [81, 81]


def test_grid_empty_space_one_trial() -> None:
    assert GridSearch().suggest(Space(), [], 5) == [{}]


# ------------------------------------------------------------ factory and state


def test_make_algorithm_unknown() -> None:
    with pytest.raises(UsageError, match="--algorithm 'tpe': unknown algorithm; valid algorithms are random, grid"):
        make_algorithm("tpe", None)


def test_make_algorithm_grid_points() -> None:
    with pytest.raises(UsageError, match="--grid-points 0: must be at least 1"):
        make_algorithm("grid", None, grid_points=0)


@pytest.mark.parametrize(("name", "seed", "points"), [("random", 5, 5), ("grid", 1, 7)])
def test_algorithm_json_round_trip(name: str, seed: int, points: int) -> None:
    algorithm = make_algorithm(name, seed, points)
    restored = algorithm_from_json(json.loads(json.dumps(algorithm.to_json())))
    assert restored == algorithm
    assert restored.suggest(MIXED, [], 5) == algorithm.suggest(MIXED, [], 5)


def test_algorithm_json_without_seed() -> None:
    algorithm = make_algorithm("random", None)
    assert algorithm_from_json(json.loads(json.dumps(algorithm.to_json()))) == algorithm


def test_params_key_ignores_order() -> None:
    assert params_key({"/a": 1, "/b": 2.5}) == params_key({"/b": 2.5, "/a": 1})
    assert params_key({"/a": 1}) != params_key({"/a": 1.5})


def test_loguniform_grid_points_finite() -> None:
    values = space_of(lr="loguniform(1e-300, 1e300)")["/lr"].grid(7)
    assert all(math.isfinite(value) for value in values)
    assert values[0] == 1e-300
    assert values[-1] == 1e300
