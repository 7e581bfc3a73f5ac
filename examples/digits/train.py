"""Train a support vector classifier on scikit-learn's digits and report its validation error.

The data set ships with scikit-learn, so nothing is downloaded.  The regularization
``--C`` comes from the command line; the kernel settings and the split come from
the YAML file given with ``--config``.  The objective is the validation error
(1 - accuracy), which hpcsweep minimizes; the accuracy is reported beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import yaml
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from hpcsweep.client import report_objective

CONFIG_KEYS = {
    "data": {"validation_fraction", "split_seed"},
    "model": {"kernel", "gamma", "tol", "cache_size_mb"},
}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True,
                        help="YAML file with the data and model settings")
    parser.add_argument("--C", type=float, default=1.0,
                        help="inverse strength of the regularization (default 1)")
    return parser.parse_args(argv)


def load_config(path: str) -> dict[str, Any]:
    """Read the YAML file at ``path``.

    Exit with status 1 on a missing or unknown key, or on a prior left unsampled.
    """
    with open(path, encoding="utf-8") as handle:
        config: dict[str, Any] = yaml.safe_load(handle)
    for section, keys in CONFIG_KEYS.items():
        present = set(config.get(section) or {})
        if present != keys:
            missing = ", ".join(sorted(keys - present)) or "none"
            unknown = ", ".join(sorted(present - keys)) or "none"
            sys.exit(f"invalid config {path}, section {section!r}: "
                     f"missing keys {missing}; unknown keys {unknown}")
        for key, value in config[section].items():
            if isinstance(value, str) and value.startswith(("hpcsweep~", "orion~")):
                sys.exit(f"config {path}: {section}.{key} is the prior {value!r}; run this file "
                         f"through 'hpcsweep submit', or copy it and write a number there")
    return config


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    config = load_config(arguments.config)
    data, model = config["data"], config["model"]

    features, labels = load_digits(return_X_y=True)
    features = features / 16.0  # pixel values are integers from 0 to 16
    train_x, valid_x, train_y, valid_y = train_test_split(
        features, labels, test_size=data["validation_fraction"], random_state=data["split_seed"],
        stratify=labels,
    )

    started = time.perf_counter()
    classifier = SVC(C=arguments.C, kernel=model["kernel"], gamma=model["gamma"], tol=model["tol"],
                     cache_size=model["cache_size_mb"])
    classifier.fit(train_x, train_y)
    accuracy = float(classifier.score(valid_x, valid_y))
    fit_s = time.perf_counter() - started

    print(f"C={arguments.C:.4g} gamma={model['gamma']:.4g}: validation accuracy {accuracy:.4f} "
          f"({fit_s:.2f} s to fit and score)")
    report_objective(1.0 - accuracy, name="validation_error", accuracy=accuracy, fit_s=fit_s)


if __name__ == "__main__":
    main()
