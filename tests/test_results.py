"""The results file a trial's script writes: both accepted forms and every way to get it wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcsweep.results import InvalidResultsError, TrialResults, parse_results, read_results


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_orion_list_form(tmp_path: Path) -> None:
    data = [
        {"name": "loss", "type": "objective", "value": 0.25},
        {"name": "accuracy", "type": "statistic", "value": 0.9},
        {"name": "grad", "type": "gradient", "value": [0.1, -0.2]},
    ]
    results = read_results(write(tmp_path, json.dumps(data)))
    assert results == TrialResults(0.25, "loss", {"loss": 0.25, "accuracy": 0.9, "grad": [0.1, -0.2]})


def test_mapping_form(tmp_path: Path) -> None:
    results = read_results(write(tmp_path, '{"objective": 3, "accuracy": 0.97, "epochs": 10}'))
    assert results.objective == 3.0
    assert type(results.objective) is float
    assert results.objective_name == "objective"
    assert results.results == {"objective": 3, "accuracy": 0.97, "epochs": 10}


def test_other_non_finite_results_kept_as_text(tmp_path: Path) -> None:
    results = read_results(write(tmp_path, '{"objective": 0.5, "grad_norm": NaN, "hist": [Infinity, 1]}'))
    assert results.results == {"objective": 0.5, "grad_norm": "nan", "hist": ["inf", 1]}
    json.dumps(results.results, allow_nan=False)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidResultsError, match=r"the script wrote no results file \(results.json\)"):
        read_results(tmp_path / "results.json")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "results.json").mkdir()
    with pytest.raises(InvalidResultsError, match="cannot read the results file"):
        read_results(tmp_path / "results.json")


@pytest.mark.parametrize("text", ["", "   \n", "\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidResultsError, match="the results file is empty"):
        read_results(write(tmp_path, text))


@pytest.mark.parametrize("text", ["{", '{"objective": 0.1', "[{]", "objective=0.1", '{"objective": 0.1}}'])
def test_malformed_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidResultsError, match="is not valid JSON"):
        read_results(write(tmp_path, text))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(b'{"objective": "\xff"}')
    with pytest.raises(InvalidResultsError, match="cannot read the results file"):
        read_results(path)


def test_deeply_nested_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidResultsError, match="too deeply"):
        read_results(write(tmp_path, "[" * 100_000 + "]" * 100_000))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"accuracy": 0.9}, "has no key 'objective' (keys: accuracy)"),
        ({}, "has no key 'objective' (keys: none)"),
        ([], "has 0 entries of type 'objective'"),
        ([{"name": "acc", "type": "statistic", "value": 0.9}], "has 0 entries of type 'objective'"),
        ([{"name": "a", "type": "objective", "value": 1}, {"name": "b", "type": "objective", "value": 2}],
         "has 2 entries of type 'objective'; expected exactly one"),
        ([{"type": "objective", "value": 1}], "entry 0 of the results list"),
        ([{"name": "loss", "type": "objective"}], "entry 0 of the results list"),
        ([0.5], "entry 0 of the results list"),
        (0.5, "contains a float, expected a list or a mapping"),
        ("0.5", "contains a str, expected a list or a mapping"),
        (None, "contains a NoneType"),
        ({"objective": None}, "is None, not a number"),
        ({"objective": "0.1"}, "is '0.1', not a number"),
        ({"objective": True}, "is True, not a number"),
        ({"objective": [0.1]}, "is [0.1], not a number"),
        ({"objective": float("nan")}, "is nan, not a finite number"),
        ({"objective": float("inf")}, "is inf, not a finite number"),
        ({"objective": -float("inf")}, "is -inf, not a finite number"),
        ({"objective": 10**400}, "too large for a float"),
        ([{"name": "loss", "type": "objective", "value": float("nan")}], "the objective 'loss' is nan"),
    ],
)
def test_invalid_results(data: object, fragment: str) -> None:
    with pytest.raises(InvalidResultsError) as info:
        parse_results(data)
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["NaN", '{"objective": NaN}', '{"objective": Infinity}',
                                  '[{"name": "l", "type": "objective", "value": -Infinity}]'])
def test_non_finite_objective_in_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidResultsError):
        read_results(write(tmp_path, text))


def test_invalid_results_is_value_error() -> None:
    assert issubclass(InvalidResultsError, ValueError)
