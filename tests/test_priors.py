"""Priors in Orion's syntax: parsing, validation, sampling, grids and saved state."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcsweep.errors import PriorError, UsageError
from hpcsweep.priors import (
    Choices,
    Fidelity,
    LogUniform,
    Normal,
    Prior,
    Uniform,
    prior_from_json,
)
from hpcsweep.prior_syntax import parse_prior
from hpcsweep.space import Space


# ----------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("uniform(0, 1)", Uniform(0, 1)),
        ("uniform(-2.5, 3.5)", Uniform(-2.5, 3.5)),
        ("uniform(1, 9, discrete=True)", Uniform(1, 9, True)),
        ("uniform(low=0, high=1)", Uniform(0, 1)),
        ("uniform(1, 9, shape=3, discrete=True)", Uniform(1, 9, True, shape=3)),
        ("loguniform(1e-5, 1.0)", LogUniform(1e-5, 1)),
        ("loguniform(1, 1024, discrete=True)", LogUniform(1, 1024, True)),
        ("loguniform(1e-6, 0.5, shape=4)", LogUniform(1e-6, 0.5, shape=4)),
        ("normal(0, 1)", Normal(0, 1)),
        ("normal(mu=3, sigma=0.5, discrete=True)", Normal(3, 0.5, True)),
        ("choices([1, 2, 3])", Choices((1, 2, 3))),
        ("choices(['sgd', 'adam'])", Choices(("sgd", "adam"))),
        ("choices('sgd', 'adam')", Choices(("sgd", "adam"))),
        ("choices([True, False])", Choices((True, False))),
        ("choices([[4, 8], [2, 2]])", Choices(([4, 8], [2, 2]))),
        ("choices({'a': 0.2, 'b': 0.8})", Choices(("a", "b"), (0.2, 0.8))),
        ("fidelity(1, 81, base=3)", Fidelity(1, 81, 3)),
        ("fidelity(1, 100)", Fidelity(1, 100, 2)),
        ("  uniform( 0 , 1 )  ", Uniform(0, 1)),
    ],
)
def test_parse_prior_valid(expression: str, expected: Prior) -> None:
    assert parse_prior(expression) == expected


def test_parse_prior_shape_list() -> None:
    assert parse_prior("uniform(0, 1, shape=[2])").shape == 2


def test_parse_prior_integers_stay_integers() -> None:
    prior = parse_prior("uniform(1.0, 9.0)")
    assert isinstance(prior, Uniform)
    assert prior.expression() == "uniform(1, 9)"


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("loguniform(1e-5", "malformed prior"),
        ("uniform 0, 1", "malformed prior"),
        ("lognormal(0, 1)", "unknown prior 'lognormal'"),
        ("os.system('ls')", "malformed prior"),
        ("uniform(1, 1)", "must be below high"),
        ("uniform(2, 1)", "must be below high"),
        ("loguniform(0, 1)", "low must be above 0"),
        ("loguniform(-1, 1)", "low must be above 0"),
        ("loguniform(1e-3, 1e-5)", "must be below high"),
        ("uniform(0, 1e999)", "must be finite"),
        ("uniform(-1e999, 0)", "must be finite"),
        ("loguniform(1e-4, 1e999)", "must be finite"),
        ("normal(0, 1e999)", "must be finite"),
        ("uniform(-1e308, 1e308)", "overflows"),
        ("uniform('a', 1)", "must be a number"),
        ("uniform(True, 2)", "must be a number"),
        ("uniform(0, 1, discrete='yes')", "discrete must be True or False"),
        ("uniform(0.2, 0.8, discrete=True)", "no integer lies"),
        ("uniform(0, 1, shape=0)", "shape must be a positive integer"),
        ("uniform(0, 1, shape=1.5)", "shape must be a positive integer"),
        ("uniform(0, 1, 2)", "at most 2 positional"),
        ("uniform(0, 1, bogus=2)", "has no argument 'bogus'"),
        ("uniform(0, low=1)", "got 'low' twice"),
        ("uniform(0)", "missing high"),
        ("uniform(*[0, 1])", "not a literal"),
        ("uniform(**{'low': 0, 'high': 1})", "may not use * or **"),
        ("normal(0, 0)", "sigma must be above 0"),
        ("choices([])", "at least one option"),
        ("choices([1, 1])", "listed twice"),
        ("choices([1, 2], shape=2)", "takes no keyword arguments"),
        ("choices({'a': 0.5, 'b': 0.6})", "must sum to 1"),
        ("choices({'a': 0, 'b': 1})", "must be above 0"),
        ("choices([1, {2: 3}])", "is not a number, string"),
        ("choices([1, float('nan')])", "not a literal"),
        ("fidelity(0, 10)", "0 < low <= high"),
        ("fidelity(10, 1)", "0 < low <= high"),
        ("fidelity(1, 10, base=0.5)", "base must be at least 1"),
        ("fidelity(1, 10, shape=2)", "has no argument 'shape'"),
    ],
)
def test_parse_prior_invalid(expression: str, fragment: str) -> None:
    with pytest.raises(PriorError) as info:
        parse_prior(expression, "--lr")
    message = str(info.value)
    assert message.startswith("--lr")
    assert fragment in message
    assert "\n" not in message


def test_prior_error_is_usage_error() -> None:
    assert issubclass(PriorError, UsageError)


def test_parse_prior_boolean_not_number_option() -> None:
    # True == 1 in Python, but the two options are different values.
    prior = parse_prior("choices([1, True])")
    assert isinstance(prior, Choices)
    assert prior.options == (1, True)
    assert not prior.is_boolean


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('touch pwned')",
        "uniform(__import__('os').system('touch pwned'), 1)",
        "uniform(0, 1, discrete=exec('x=1'))",
        "choices([open('/etc/passwd').read()])",
        "uniform(0, (lambda: 1)())",
        "uniform.__class__(0, 1)",
    ],
)
def test_parse_prior_never_executes(
    expression: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PriorError):
        parse_prior(expression)
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------- sampling


def test_loguniform_bounds_are_values() -> None:
    prior = parse_prior("loguniform(0.0001, 1000)")
    rng = random.Random(0)
    samples = [prior.sample(rng) for _ in range(2000)]
    assert all(1e-4 <= value <= 1000 for value in samples)
    # Values, not exponents: about half of a log-uniform sample lies below the
    # geometric middle, sqrt(1e-4 * 1000) = 0.316.
    below = sum(value < math.sqrt(1e-4 * 1000) for value in samples)
    assert 800 < below < 1200


def test_loguniform_discrete_samples_integers() -> None:
    prior = parse_prior("loguniform(1, 1024, discrete=True)")
    rng = random.Random(1)
    samples = [prior.sample(rng) for _ in range(500)]
    assert all(isinstance(value, int) for value in samples)
    assert all(1 <= value <= 1024 for value in samples)


def test_uniform_discrete_includes_both_bounds() -> None:
    prior = parse_prior("uniform(1, 3, discrete=True)")
    rng = random.Random(2)
    assert {prior.sample(rng) for _ in range(200)} == {1, 2, 3}


def test_shaped_prior_samples_list() -> None:
    prior = parse_prior("uniform(1, 9, shape=3, discrete=True)")
    value = prior.sample(random.Random(3))
    assert isinstance(value, list)
    assert len(value) == 3
    assert prior.contains(value)
    assert not prior.contains(value[:2])


def test_weighted_choices_follow_weights() -> None:
    prior = parse_prior("choices({'sgd': 0.2, 'adam': 0.8})")
    rng = random.Random(4)
    samples = [prior.sample(rng) for _ in range(2000)]
    assert 1450 < samples.count("adam") < 1750


def test_zero_as_categorical_option() -> None:
    prior = parse_prior("choices([0, 1e-6, 1e-4])")
    rng = random.Random(5)
    assert {prior.sample(rng) for _ in range(100)} == {0, 1e-6, 1e-4}


def test_fidelity_samples_high() -> None:
    prior = parse_prior("fidelity(1, 81, base=3)")
    assert prior.sample(random.Random(6)) == 81
    assert prior.grid(5) == [81]


@pytest.mark.parametrize(
    "expression",
    ["uniform(0, 1)", "loguniform(1e-5, 1)", "normal(0, 1, discrete=True)",
     "uniform(1, 9, discrete=True, shape=2)", "choices([True, False])", "choices({'a': 0.5, 'b': 0.5})"],
)
def test_samples_inside_prior(expression: str) -> None:
    prior = parse_prior(expression)
    rng = random.Random(7)
    for _ in range(200):
        assert prior.contains(prior.sample(rng))


def test_boolean_choice_rejects_one() -> None:
    prior = parse_prior("choices([True, False])")
    assert prior.contains(True)
    assert not prior.contains(1)


# -------------------------------------------------------------------------- grid


def test_loguniform_grid_log_spaced() -> None:
    grid = parse_prior("loguniform(1e-4, 1)").grid(5)
    assert grid[0] == 1e-4
    assert grid[-1] == 1
    assert grid[1:4] == pytest.approx([1e-3, 1e-2, 1e-1])


def test_uniform_grid_linear() -> None:
    assert parse_prior("uniform(0, 1)").grid(5) == [0, 0.25, 0.5, 0.75, 1]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("uniform(0, 1)", [0.5]), ("loguniform(1e-4, 1)", [pytest.approx(1e-2)])],
)
def test_grid_single_point_is_middle(expression: str, expected: list[float]) -> None:
    assert parse_prior(expression).grid(1) == expected


def test_discrete_grid_no_duplicates() -> None:
    assert parse_prior("uniform(1, 3, discrete=True)").grid(5) == [1, 2, 3]
    grid = parse_prior("loguniform(1, 1000, discrete=True)").grid(4)
    assert grid == [1, 10, 100, 1000]


def test_choices_grid_is_options() -> None:
    assert parse_prior("choices(['a', 'b', 'c'])").grid(2) == ["a", "b", "c"]


def test_normal_grid_inside_quantiles() -> None:
    grid = parse_prior("normal(0, 1)").grid(3)
    assert grid[1] == pytest.approx(0)
    assert grid[0] == pytest.approx(-1.6449, abs=1e-3)
    assert grid[2] == pytest.approx(1.6449, abs=1e-3)


# ------------------------------------------------------------ expression and JSON


def test_weighted_list_choices_expression() -> None:
    prior = parse_prior("choices({(4, 8): 0.5, (2,): 0.25, 'a': 0.25})")
    assert isinstance(prior, Choices)
    assert prior.options == ([4, 8], [2], "a")
    assert prior.expression() == "choices({(4, 8): 0.5, (2,): 0.25, 'a': 0.25})"
    assert parse_prior(prior.expression()) == prior


# The first draw of st.text builds Hypothesis's Unicode tables, which can take
# over a second on a loaded machine.
TEXT_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _finite(low: float = -1e6, high: float = 1e6) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _option_key(option: object) -> object:
    """Return a key equal for options that choices() counts as the same.

    True and 1 are different options, but inside lists Python compares them equal.
    """
    if isinstance(option, list):
        return tuple(float(item) if isinstance(item, (int, float)) else item for item in option)
    if isinstance(option, bool):
        return ("bool", option)
    if isinstance(option, (int, float)):
        return float(option)
    return option


@st.composite
def priors(draw: st.DrawFn) -> Prior:
    kind = draw(st.sampled_from(["uniform", "loguniform", "normal", "choices", "weighted", "fidelity"]))
    shape = draw(st.one_of(st.none(), st.integers(1, 4)))
    if kind in ("uniform", "loguniform"):
        low = draw(_finite(1e-6, 1e3) if kind == "loguniform" else _finite())
        high = draw(_finite(low + max(abs(low), 1.0) * 1e-3 + 1.0, 2e6))
        discrete = draw(st.booleans())
        cls = Uniform if kind == "uniform" else LogUniform
        return parse_prior(cls(low, high, discrete, shape=shape).expression())
    if kind == "normal":
        return parse_prior(Normal(draw(_finite()), draw(_finite(1e-3, 1e3)), draw(st.booleans()),
                                  shape=shape).expression())
    if kind == "fidelity":
        low = draw(st.integers(1, 10))
        return parse_prior(Fidelity(low, draw(st.integers(low, 1000)), draw(st.integers(1, 4))).expression())
    scalars = st.one_of(st.integers(-1000, 1000), _finite(), st.text(max_size=8), st.booleans(), st.none())
    options = draw(st.lists(st.one_of(scalars, st.lists(scalars, max_size=3)), min_size=1, max_size=5,
                            unique_by=_option_key))
    if kind == "choices":
        return parse_prior(Choices(tuple(options)).expression())
    # A dict literal merges the keys 0 and False, so weighted options keep one of them.
    options = list({_option_key(option) if not isinstance(option, bool) else float(option): option
                    for option in reversed(options)}.values())
    weights = [1 / len(options)] * len(options)
    return parse_prior(Choices(tuple(options), tuple(weights)).expression())


@given(priors())
@TEXT_SETTINGS
def test_expression_round_trip(prior: Prior) -> None:
    assert parse_prior(prior.expression()) == prior


@given(priors())
@TEXT_SETTINGS
def test_json_round_trip(prior: Prior) -> None:
    restored = prior_from_json(json.loads(json.dumps(prior.to_json())))
    assert restored == prior
    assert restored.expression() == prior.expression()


@given(priors(), st.integers(0, 2**32))
@TEXT_SETTINGS
def test_sample_inside_after_json(prior: Prior, seed: int) -> None:
    value = json.loads(json.dumps(prior.sample(random.Random(seed))))
    assert prior.contains(value)


def test_prior_from_json_unknown_kind() -> None:
    with pytest.raises(PriorError, match="unknown prior kind 'beta'"):
        prior_from_json({"kind": "beta"})


# ------------------------------------------------------------------------- space


def test_space_finds_nested_fidelity() -> None:
    space = Space({"/lr": parse_prior("loguniform(1e-5, 1)"),
                   "/trainer/max_epochs": parse_prior("fidelity(1, 81, base=3)")})
    assert space.fidelity == "/trainer/max_epochs"
    assert Space({"/lr": parse_prior("uniform(0, 1)")}).fidelity is None


def test_space_rejects_two_fidelities() -> None:
    with pytest.raises(UsageError, match="2 fidelity priors"):
        Space({"/a": parse_prior("fidelity(1, 10)"), "/b": parse_prior("fidelity(1, 20)")})


def test_space_check_params() -> None:
    space = Space({"/lr": parse_prior("uniform(0, 1)"), "/opt": parse_prior("choices(['a', 'b'])")})
    space.check_params({"/lr": 0.5, "/opt": "a"})
    with pytest.raises(UsageError, match="not in the search space"):
        space.check_params({"/lr": 0.5, "/opt": "a", "/x": 1})
    with pytest.raises(UsageError, match="has no value"):
        space.check_params({"/lr": 0.5})
    with pytest.raises(UsageError, match="outside its prior"):
        space.check_params({"/lr": 2.0, "/opt": "a"})
