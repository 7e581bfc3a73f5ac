"""The prior syntax: ``loguniform(1e-5, 1.0)`` and the other expressions, parsed safely.

An expression is parsed with :mod:`ast`, and every argument is read with
:func:`ast.literal_eval`, so nothing in it is ever executed.  Invalid input raises
:class:`~hpcsweep.errors.PriorError` with the label of the dimension, the value and
what is expected.
"""

from __future__ import annotations

import ast
import math
from typing import Any, Callable

from hpcsweep.errors import PriorError
from hpcsweep.priors import (
    require_finite, same_value, PRIOR_NAMES, MAX_SHAPE, Value, Prior, Uniform, LogUniform, Normal, Choices, Fidelity,
)


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
    low = require_finite(name, low_key, bound[low_key])
    high = require_finite(name, high_key, bound[high_key])
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
    mu = require_finite(name, "mu", bound["mu"])
    sigma = require_finite(name, "sigma", bound["sigma"])
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
        values = [require_finite(name, f"the weight of {key!r}", w) for key, w in raw.items()]
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
        if any(same_value(option, other) for other in seen):
            raise PriorError(f"{name}: option {option!r} is listed twice")
        seen.append(option)
    return Choices(options, weights)


def _build_fidelity(name: str, args: list[Any], kwargs: dict[str, Any]) -> Prior:
    bound = _bind(name, args, kwargs, ("low", "high"), {"base": 2})
    low = require_finite(name, "low", bound["low"])
    high = require_finite(name, "high", bound["high"])
    if low <= 0 or low > high:
        raise PriorError(f"{name}: expected 0 < low <= high, got low={low!r}, high={high!r}")
    base = require_finite(name, "base", bound["base"])
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
