"""Priors: the distributions of a search space, parsed from Orion's expression syntax.

An expression such as ``loguniform(1e-5, 1.0)`` is parsed with :mod:`ast` and every
argument is read with :func:`ast.literal_eval`, so nothing in it is ever executed.
A prior turns into plain JSON (:meth:`Prior.to_json`) and back, which is how the
search space travels from the planner to the array tasks.
"""

from __future__ import annotations

import ast
import math
import random
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from hpcsweep.errors import PriorError

Value = Any  # a JSON value: int, float, str, bool, None or a list of them

PRIOR_NAMES = ("uniform", "loguniform", "normal", "choices", "fidelity")
# Each value of a shaped prior is one token of the command line, which Linux
# limits to about 2 MB in all.
MAX_SHAPE = 10_000


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_finite(name: str, label: str, value: object) -> float:
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
        return any(_same_value(value, option) for option in self.options)


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


def _same_value(left: Value, right: Value) -> bool:
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


# ----------------------------------------------------------------------- parsing


def parse_prior(expression: str, label: str = "prior") -> Prior:
    """Parse a prior expression such as ``uniform(0, 1, discrete=True)``.

    ``label`` names the dimension in error messages.  Raises :class:`PriorError`
    for a malformed expression, an unknown prior, a non-literal argument or
    invalid bounds.
    """
    text = expression.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise PriorError(
            f"{label}: malformed prior {expression!r}; expected a call such as "
            f"'uniform(0, 1)' with balanced brackets"
        ) from None

    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise PriorError(
            f"{label}: malformed prior {expression!r}; expected one of "
            f"{', '.join(PRIOR_NAMES)} called with literal arguments"
        )
    name = call.func.id
    builder = _BUILDERS.get(name)
    if builder is None:
        raise PriorError(
            f"{label}: unknown prior {name!r}; valid priors are {', '.join(PRIOR_NAMES)}"
        )

    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise PriorError(
            f"{label}: prior {expression!r} has an argument that is not a literal; "
            f"write numbers, strings, lists or dicts only"
        ) from None
    if any(kw.arg is None for kw in call.keywords) or any(
        isinstance(arg, ast.Starred) for arg in call.args
    ):
        raise PriorError(f"{label}: prior {expression!r} may not use * or ** arguments")
    if len(kwargs) < len(call.keywords):
        names = [kw.arg for kw in call.keywords]
        repeated = next(name for name in names if names.count(name) > 1)
        raise PriorError(f"{label}: prior {expression!r} gives {repeated}= twice; keep one")

    return builder(f"{label}: {name}", args, kwargs)


def _bind(
    name: str, args: list[Any], kwargs: dict[str, Any], params: tuple[str, ...],
    defaults: dict[str, Any],
) -> dict[str, Any]:
    bound = dict(defaults)
    if len(args) > len(params):
        raise PriorError(f"{name} takes at most {len(params)} positional arguments, got {len(args)}")
    bound.update(zip(params, args))
    valid = set(params) | set(defaults)
    for key, value in kwargs.items():
        if key not in valid:
            raise PriorError(
                f"{name} has no argument {key!r}; valid arguments are {', '.join(sorted(valid))}"
            )
        if key in bound and key in params[: len(args)]:
            raise PriorError(f"{name} got {key!r} twice")
        bound[key] = value
    missing = [param for param in params if param not in bound]
    if missing:
        raise PriorError(f"{name} is missing {', '.join(missing)}")
    return bound


def _shape(name: str, bound: dict[str, Any]) -> int | None:
    shape = bound.get("shape")
    if shape is None:
        return None
    if isinstance(shape, (list, tuple)) and len(shape) == 1:
        shape = shape[0]
    if not isinstance(shape, int) or isinstance(shape, bool) or shape < 1:
        raise PriorError(f"{name}: shape must be a positive integer, got {shape!r}")
    if shape > MAX_SHAPE:
        raise PriorError(f"{name}: shape {shape} is above {MAX_SHAPE}; so many values would not fit "
                         f"on a command line, so write them to a file instead")
    return shape


def _discrete(name: str, bound: dict[str, Any]) -> bool:
    discrete = bound.get("discrete", False)
    if not isinstance(discrete, bool):
        raise PriorError(f"{name}: discrete must be True or False, got {discrete!r}")
    return discrete


def _bounds(name: str, bound: dict[str, Any], low_key: str, high_key: str) -> tuple[float, float]:
    low = _require_finite(name, low_key, bound[low_key])
    high = _require_finite(name, high_key, bound[high_key])
    if low >= high:
        raise PriorError(f"{name}: {low_key} ({bound[low_key]!r}) must be below {high_key} "
                         f"({bound[high_key]!r}); swap them or widen the range")
    if not math.isfinite(high - low):
        raise PriorError(f"{name}: the range from {bound[low_key]!r} to {bound[high_key]!r} overflows "
                         f"a float; narrow it")
    return low, high


def _as_number(value: float) -> float:
    # Keep integers written as integers (uniform(1, 9)) so that they render as 1, not 1.0.
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _build_uniform(name: str, args: list[Any], kwargs: dict[str, Any]) -> Prior:
    bound = _bind(name, args, kwargs, ("low", "high"), {"discrete": False, "shape": None})
    low, high = _bounds(name, bound, "low", "high")
    discrete = _discrete(name, bound)
    if discrete and math.ceil(low) > math.floor(high):
        raise PriorError(f"{name}: no integer lies in [{low!r}, {high!r}]")
    return Uniform(_as_number(bound["low"]), _as_number(bound["high"]), discrete,
                   shape=_shape(name, bound))


def _build_loguniform(name: str, args: list[Any], kwargs: dict[str, Any]) -> Prior:
    bound = _bind(name, args, kwargs, ("low", "high"), {"discrete": False, "shape": None})
    low, high = _bounds(name, bound, "low", "high")
    if low <= 0:
        raise PriorError(
            f"{name}: low must be above 0, got {bound['low']!r}; the bounds are values, "
            f"not exponents (for an exact 0, use choices([0, ...]) instead)"
        )
    discrete = _discrete(name, bound)
    if discrete and math.ceil(low) > math.floor(high):
        raise PriorError(f"{name}: no integer lies in [{low!r}, {high!r}]")
    return LogUniform(_as_number(bound["low"]), _as_number(bound["high"]), discrete,
                      shape=_shape(name, bound))


def _build_normal(name: str, args: list[Any], kwargs: dict[str, Any]) -> Prior:
    bound = _bind(name, args, kwargs, ("mu", "sigma"), {"discrete": False, "shape": None})
    mu = _require_finite(name, "mu", bound["mu"])
    sigma = _require_finite(name, "sigma", bound["sigma"])
    if sigma <= 0:
        raise PriorError(f"{name}: sigma must be above 0, got {bound['sigma']!r}")
    return Normal(_as_number(mu), _as_number(sigma), _discrete(name, bound),
                  shape=_shape(name, bound))


def _check_option(name: str, option: Any) -> Value:
    if isinstance(option, tuple):
        option = list(option)
    if isinstance(option, list):
        return [_check_option(name, item) for item in option]
    if option is None or isinstance(option, (bool, int, str)):
        return option
    if isinstance(option, float):
        if not math.isfinite(option):
            raise PriorError(f"{name}: option {option!r} is not finite")
        return option
    raise PriorError(
        f"{name}: option {option!r} is not a number, string, boolean, null or list"
    )


def _build_choices(name: str, args: list[Any], kwargs: dict[str, Any]) -> Prior:
    if kwargs:
        raise PriorError(f"{name} takes no keyword arguments, got {', '.join(kwargs)}")
    if len(args) == 1 and isinstance(args[0], (list, tuple, dict)):
        raw = args[0]
    else:
        raw = args  # Orion also accepts choices('a', 'b', 'c')
    if not raw:
        raise PriorError(f"{name} needs at least one option")

    weights: tuple[float, ...] | None = None
    if isinstance(raw, dict):
        options = tuple(_check_option(name, key) for key in raw)
        values = [_require_finite(name, f"the weight of {key!r}", w) for key, w in raw.items()]
        if any(w <= 0 for w in values):
            raise PriorError(f"{name}: every weight must be above 0, got {list(values)}")
        total = sum(values)
        if abs(total - 1) > 1e-6:
            raise PriorError(f"{name}: the weights must sum to 1, got {total!r}")
        weights = tuple(values)
    else:
        options = tuple(_check_option(name, option) for option in raw)

    seen: list[Value] = []
    for option in options:
        if any(_same_value(option, other) for other in seen):
            raise PriorError(f"{name}: option {option!r} is listed twice")
        seen.append(option)
    return Choices(options, weights)


def _build_fidelity(name: str, args: list[Any], kwargs: dict[str, Any]) -> Prior:
    bound = _bind(name, args, kwargs, ("low", "high"), {"base": 2})
    low = _require_finite(name, "low", bound["low"])
    high = _require_finite(name, "high", bound["high"])
    if low <= 0 or low > high:
        raise PriorError(f"{name}: expected 0 < low <= high, got low={low!r}, high={high!r}")
    base = _require_finite(name, "base", bound["base"])
    if base < 1:
        raise PriorError(f"{name}: base must be at least 1, got {bound['base']!r}")
    return Fidelity(_as_number(low), _as_number(high), _as_number(base))


_BUILDERS: dict[str, Callable[[str, list[Any], dict[str, Any]], Prior]] = {
    "uniform": _build_uniform,
    "loguniform": _build_loguniform,
    "normal": _build_normal,
    "choices": _build_choices,
    "fidelity": _build_fidelity,
}


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
