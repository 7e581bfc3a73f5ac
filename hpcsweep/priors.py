"""Priors: the distributions of a search space.

:mod:`hpcsweep.prior_syntax` parses them from Orion's expression syntax.  A prior
turns into plain JSON (:meth:`Prior.to_json`) and back, which is how the search
space travels from the planner to the array tasks.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hpcsweep.errors import PriorError

Value = Any  # a JSON value: int, float, str, bool, None or a list of them

PRIOR_NAMES = ("uniform", "loguniform", "normal", "choices", "fidelity")
# Each value of a shaped prior is one token of the command line, which Linux
# limits to about 2 MB in all.
MAX_SHAPE = 10_000


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_finite(name: str, label: str, value: object) -> float:
    if not _is_number(value):
        raise PriorError(f"{name}: {label} must be a number, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise PriorError(f"{name}: {label} must be finite, got {value!r}")
    return number


@dataclass(frozen=True)
class Prior:
    """One dimension of a search space.

    ``sample`` draws one value with the given random generator; ``grid`` returns
    the values that a grid search visits, with ``points`` values for a continuous
    prior.  A prior with ``shape`` draws a list of that many values.
    """

    kind: ClassVar[str] = ""
    shape: int | None = field(default=None, kw_only=True)

    def sample(self, rng: random.Random) -> Value:
        if self.shape is None:
            return self._sample_one(rng)
        return [self._sample_one(rng) for _ in range(self.shape)]

    def grid(self, points: int) -> list[Value]:
        values = self._grid_one(points)
        if self.shape is None:
            return values
        # A shaped prior takes the same value in every position of the grid.
        return [[value] * self.shape for value in values]

    def contains(self, value: Value) -> bool:
        if self.shape is None:
            return self._contains_one(value)
        return (
            isinstance(value, list)
            and len(value) == self.shape
            and all(self._contains_one(item) for item in value)
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        data.update(self._arguments())
        if self.shape is not None:
            data["shape"] = self.shape
        return data

    def expression(self) -> str:
        """Return the prior in the syntax that :func:`parse_prior` reads."""
        arguments = dict(self._arguments())
        if self.shape is not None:
            arguments["shape"] = self.shape
        positional = [repr(arguments.pop(key)) for key in self._positional()]
        keywords = [f"{key}={value!r}" for key, value in arguments.items() if value is not False]
        return f"{self.kind}({', '.join(positional + keywords)})"

    @property
    def is_log(self) -> bool:
        return False

    def _positional(self) -> tuple[str, ...]:
        return ()

    def _arguments(self) -> dict[str, Any]:
        raise NotImplementedError

    def _sample_one(self, rng: random.Random) -> Value:
        raise NotImplementedError

    def _grid_one(self, points: int) -> list[Value]:
        raise NotImplementedError

    def _contains_one(self, value: Value) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Uniform(Prior):
    """Uniform on ``[low, high]``; integers from ``low`` to ``high`` inclusive if discrete."""

    kind: ClassVar[str] = "uniform"
    low: float
    high: float
    discrete: bool = False

    def _positional(self) -> tuple[str, ...]:
        return ("low", "high")

    def _arguments(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "discrete": self.discrete}

    def _sample_one(self, rng: random.Random) -> Value:
        if self.discrete:
            return rng.randint(math.ceil(self.low), math.floor(self.high))
        return rng.uniform(self.low, self.high)

    def _grid_one(self, points: int) -> list[Value]:
        if self.discrete:
            return _discrete_grid(self.low, self.high, points, log=False)
        return _linear_grid(self.low, self.high, points)

    def _contains_one(self, value: Value) -> bool:
        if not _is_number(value) or (self.discrete and float(value) != int(value)):
            return False
        return bool(self.low <= value <= self.high)


@dataclass(frozen=True)
class LogUniform(Prior):
    """Log-uniform on ``[low, high]``: the bounds are values, never exponents."""

    kind: ClassVar[str] = "loguniform"
    low: float
    high: float
    discrete: bool = False

    @property
    def is_log(self) -> bool:
        return True

    def _positional(self) -> tuple[str, ...]:
        return ("low", "high")

    def _arguments(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "discrete": self.discrete}

    def _sample_one(self, rng: random.Random) -> Value:
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        # exp(log(x)) can land a hair outside the bounds.
        value = min(max(value, self.low), self.high)
        if self.discrete:
            return min(max(round(value), math.ceil(self.low)), math.floor(self.high))
        return value

    def _grid_one(self, points: int) -> list[Value]:
        if self.discrete:
            return _discrete_grid(self.low, self.high, points, log=True)
        logs = _linear_grid(math.log(self.low), math.log(self.high), points)
        values = [min(max(math.exp(x), self.low), self.high) for x in logs]
        if points > 1:
            values[0], values[-1] = self.low, self.high
        return values

    def _contains_one(self, value: Value) -> bool:
        if not _is_number(value) or (self.discrete and float(value) != int(value)):
            return False
        return bool(self.low <= value <= self.high)


@dataclass(frozen=True)
class Normal(Prior):
    """Normal with mean ``mu`` and standard deviation ``sigma``."""

    kind: ClassVar[str] = "normal"
    mu: float
    sigma: float
    discrete: bool = False

    def _positional(self) -> tuple[str, ...]:
        return ("mu", "sigma")

    def _arguments(self) -> dict[str, Any]:
        return {"mu": self.mu, "sigma": self.sigma, "discrete": self.discrete}

    def _sample_one(self, rng: random.Random) -> Value:
        value = rng.gauss(self.mu, self.sigma)
        return round(value) if self.discrete else value

    def _grid_one(self, points: int) -> list[Value]:
        # Evenly spaced quantiles between 5 % and 95 %: the normal has no bounds.
        distribution = statistics.NormalDist(self.mu, self.sigma)
        if points == 1:
            quantiles = [0.5]
        else:
            quantiles = [0.05 + 0.9 * i / (points - 1) for i in range(points)]
        values: list[Value] = [distribution.inv_cdf(q) for q in quantiles]
        if self.discrete:
            values = list(dict.fromkeys(round(v) for v in values))
        return values

    def _contains_one(self, value: Value) -> bool:
        if not _is_number(value):
            return False
        return not self.discrete or float(value) == int(value)


@dataclass(frozen=True)
class Choices(Prior):
    """A categorical prior, uniform over ``options`` unless ``weights`` are given."""

    kind: ClassVar[str] = "choices"
    options: tuple[Value, ...]
    weights: tuple[float, ...] | None = None

    def _arguments(self) -> dict[str, Any]:
        if self.weights is None:
            return {"options": list(self.options)}
        return {"options": list(self.options), "weights": list(self.weights)}

    def expression(self) -> str:
        if self.weights is None:
            return f"choices({list(self.options)!r})"
        # A list option cannot be a dict key, so the mapping is written by hand with
        # tuple keys, which parse_prior reads back as lists.
        items = [f"{_key_literal(option)}: {weight!r}" for option, weight in zip(self.options, self.weights)]
        return f"choices({{{', '.join(items)}}})"

    @property
    def is_boolean(self) -> bool:
        return all(isinstance(option, bool) for option in self.options)

    def _sample_one(self, rng: random.Random) -> Value:
        if self.weights is None:
            return rng.choice(self.options)
        return rng.choices(self.options, weights=self.weights)[0]

    def _grid_one(self, points: int) -> list[Value]:
        return list(self.options)

    def _contains_one(self, value: Value) -> bool:
        return any(same_value(value, option) for option in self.options)


@dataclass(frozen=True)
class Fidelity(Prior):
    """The budget dimension of multi-fidelity algorithms, from ``low`` to ``high``.

    Algorithms that do not use fidelities, such as random and grid search, run
    every trial at ``high``.
    """

    kind: ClassVar[str] = "fidelity"
    low: float
    high: float
    base: float = 2

    def _positional(self) -> tuple[str, ...]:
        return ("low", "high")

    def _arguments(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "base": self.base}

    def expression(self) -> str:
        return f"fidelity({self.low!r}, {self.high!r}, base={self.base!r})"

    def _sample_one(self, rng: random.Random) -> Value:
        return self.high

    def _grid_one(self, points: int) -> list[Value]:
        return [self.high]

    def _contains_one(self, value: Value) -> bool:
        return _is_number(value) and bool(self.low <= value <= self.high)


def _key_literal(option: Value) -> str:
    if not isinstance(option, list):
        return repr(option)
    items = [_key_literal(item) for item in option]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def same_value(left: Value, right: Value) -> bool:
    # True == 1 in Python, but a boolean option must not accept 1.
    return type(left) is type(right) and left == right or (
        _is_number(left) and _is_number(right) and left == right
    )


def _linear_grid(low: float, high: float, points: int) -> list[Value]:
    if points == 1:
        return [(low + high) / 2]
    return [low + (high - low) * i / (points - 1) for i in range(points)]


def _discrete_grid(low: float, high: float, points: int, log: bool) -> list[Value]:
    first, last = math.ceil(low), math.floor(high)
    if last - first + 1 <= points:
        return list(range(first, last + 1))
    if log:
        raw = [math.exp(x) for x in _linear_grid(math.log(first), math.log(last), points)]
    else:
        raw = _linear_grid(first, last, points)
    return list(dict.fromkeys(min(max(round(x), first), last) for x in raw))


def prior_from_json(data: dict[str, Any]) -> Prior:
    """Rebuild a prior saved by :meth:`Prior.to_json`."""
    kind = data.get("kind")
    shape = data.get("shape")
    if kind == "uniform":
        return Uniform(data["low"], data["high"], data.get("discrete", False), shape=shape)
    if kind == "loguniform":
        return LogUniform(data["low"], data["high"], data.get("discrete", False), shape=shape)
    if kind == "normal":
        return Normal(data["mu"], data["sigma"], data.get("discrete", False), shape=shape)
    if kind == "choices":
        weights = data.get("weights")
        return Choices(tuple(data["options"]), tuple(weights) if weights else None)
    if kind == "fidelity":
        return Fidelity(data["low"], data["high"], data.get("base", 2))
    raise PriorError(f"unknown prior kind {kind!r} in saved state")
