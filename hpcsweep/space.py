"""The search space: named priors, in the order in which they were defined.

Parameter names are paths.  A command-line option keeps its name whole, so
``--a.b`` is the parameter ``/a.b``.  A value in a configuration template is named
by its keys and list indices, as ``/layers/1/width``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from hpcsweep.errors import UsageError
from hpcsweep.priors import Fidelity, Prior, Value, prior_from_json


class Space(Mapping[str, Prior]):
    """An ordered, immutable mapping from parameter name to prior."""

    def __init__(self, priors: Mapping[str, Prior] | None = None) -> None:
        self._priors: dict[str, Prior] = dict(priors or {})
        fidelities = [name for name, prior in self._priors.items() if isinstance(prior, Fidelity)]
        if len(fidelities) > 1:
            raise UsageError(
                f"the search space has {len(fidelities)} fidelity priors ({', '.join(fidelities)}); "
                f"keep one and make the others fixed values"
            )

    def __getitem__(self, name: str) -> Prior:
        return self._priors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._priors)

    def __len__(self) -> int:
        return len(self._priors)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}~{prior.expression()}" for name, prior in self.items())
        return f"Space({inner})"

    @property
    def fidelity(self) -> str | None:
        """The name of the fidelity dimension, such as ``/trainer/max_epochs``, or None."""
        for name, prior in self.items():
            if isinstance(prior, Fidelity):
                return name
        return None

    def sample(self, rng: random.Random) -> dict[str, Value]:
        return {name: prior.sample(rng) for name, prior in self.items()}

    def check_params(self, params: Mapping[str, Value]) -> None:
        """Raise :class:`UsageError` unless ``params`` sets every dimension to a valid value."""
        unknown = [name for name in params if name not in self]
        if unknown:
            raise UsageError(
                f"parameter {unknown[0]!r} is not in the search space; "
                f"valid parameters are {', '.join(self) or '(none)'}"
            )
        for name, prior in self.items():
            if name not in params:
                raise UsageError(f"parameter {name!r} has no value; give one for {prior.expression()}")
            if not prior.contains(params[name]):
                raise UsageError(
                    f"value {params[name]!r} of {name} is outside its prior {prior.expression()}"
                )

    def to_json(self) -> dict[str, Any]:
        return {name: prior.to_json() for name, prior in self.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Space:
        return cls({name: prior_from_json(item) for name, item in data.items()})
