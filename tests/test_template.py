"""Configuration templates: priors inside YAML and JSON files, and each trial's copy."""

from __future__ import annotations

import json
import math
import random
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcsweep.errors import TemplateError, UsageError
from hpcsweep.priors import Choices, Fidelity, LogUniform, Uniform
from hpcsweep.space import Space
from hpcsweep.template import Template, load_template, yaml_literal

NESTED_YAML = textwrap.dedent(
    """\
    # training setup
    trainer:
      max_epochs: 'orion~fidelity(1, 81, base=3)'
    model:
      layers:
        - {width: 'orion~choices([64, 128, 256])', act: relu}
        - {width: 32, act: 'orion~choices(["relu", "gelu"])'}
      dropout: [0.1, 'orion~uniform(0, 0.5)']  # second entry is swept
    optim: {lr: 'orion~loguniform(1e-5, 1e-1)', betas: [0.9, 0.999]}
    seed: 7
    name: "run"
    """
)

NESTED_PARAMS = {
    "/trainer/max_epochs": 81,
    "/model/layers/0/width": 128,
    "/model/layers/1/act": "gelu",
    "/model/dropout/1": 0.25,
    "/optim/lr": 0.00123,
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- YAML


def test_yaml_nested_paths(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.yaml", NESTED_YAML), "--config")
    priors = template.priors()
    assert list(priors) == list(NESTED_PARAMS)
    assert priors["/trainer/max_epochs"] == Fidelity(1, 81, 3)
    assert priors["/model/layers/0/width"] == Choices((64, 128, 256))
    assert priors["/model/layers/1/act"] == Choices(("relu", "gelu"))
    assert priors["/model/dropout/1"] == Uniform(0, 0.5)
    assert priors["/optim/lr"] == LogUniform(1e-5, 0.1)


def test_yaml_nested_fidelity_by_path(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.yaml", NESTED_YAML), "--config")
    assert Space(template.priors()).fidelity == "/trainer/max_epochs"


def test_yaml_render_values(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.yaml", NESTED_YAML), "--config")
    document = yaml.safe_load(template.render(NESTED_PARAMS))
    assert document == {
        "trainer": {"max_epochs": 81},
        "model": {
            "layers": [{"width": 128, "act": "relu"}, {"width": 32, "act": "gelu"}],
            "dropout": [0.1, 0.25],
        },
        "optim": {"lr": 0.00123, "betas": [0.9, 0.999]},
        "seed": 7,
        "name": "run",
    }


def test_yaml_render_keeps_untouched_types(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.yaml", NESTED_YAML), "--config")
    document = yaml.safe_load(template.render(NESTED_PARAMS))
    betas = document["optim"]["betas"]
    assert isinstance(betas, list)
    assert all(type(beta) is float for beta in betas)
    assert type(document["seed"]) is int
    assert type(document["model"]["dropout"][0]) is float


def test_yaml_render_keeps_comments_and_order(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.yaml", NESTED_YAML), "--config")
    text = template.render(NESTED_PARAMS)
    lines = text.splitlines()
    assert lines[0] == "# training setup"
    assert "  dropout: [0.1, 0.25]  # second entry is swept" in lines
    assert "    - {width: 32, act: \"gelu\"}" in lines
    assert "optim: {lr: 0.00123, betas: [0.9, 0.999]}" in lines
    keys = [line.split(":")[0] for line in lines if line and not line.startswith((" ", "#"))]
    assert keys == ["trainer", "model", "optim", "seed", "name"]


def test_yaml_both_markers(tmp_path: Path) -> None:
    text = "a: 'hpcsweep~uniform(0, 1)'\nb: 'orion~uniform(0, 2)'\nc: 'other~uniform(0, 3)'\n"
    template = load_template(write(tmp_path, "cfg.yml", text), "--config")
    assert list(template.priors()) == ["/a", "/b"]
    assert yaml.safe_load(template.render({"/a": 0.5, "/b": 1.5}))["c"] == "other~uniform(0, 3)"


def test_yaml_plain_scalar_prior(tmp_path: Path) -> None:
    text = "lr: orion~loguniform(1e-4, 1)\nsizes:\n  - orion~choices([[4, 8], [2, 2]])\n"
    template = load_template(write(tmp_path, "cfg.yaml", text), "--config")
    assert list(template.priors()) == ["/lr", "/sizes/0"]
    document = yaml.safe_load(template.render({"/lr": 0.01, "/sizes/0": [4, 8]}))
    assert document == {"lr": 0.01, "sizes": [[4, 8]]}


@pytest.mark.parametrize("value", ["yes", "1e5", "null", "a: b", "# not a comment", "", "x\ny", "tab\there"])
def test_yaml_string_values_stay_strings(tmp_path: Path, value: str) -> None:
    text = yaml.safe_dump({"v": f"orion~choices([{value!r}, 'other'])"})
    template = load_template(write(tmp_path, "cfg.yaml", text), "--config")
    assert yaml.safe_load(template.render({"/v": value})) == {"v": value}


def test_yaml_list_value_stays_list(tmp_path: Path) -> None:
    text = "patch: 'orion~uniform(1, 9, shape=3, discrete=True)'\n"
    template = load_template(write(tmp_path, "cfg.yaml", text), "--config")
    assert yaml.safe_load(template.render({"/patch": [1, 5, 9]})) == {"patch": [1, 5, 9]}


def test_yaml_empty_keys_in_path(tmp_path: Path) -> None:
    text = "1: {true: 'orion~uniform(0, 1)'}\n"
    template = load_template(write(tmp_path, "cfg.yaml", text), "--config")
    assert list(template.priors()) == ["/1/true"]


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
)


@given(st.one_of(SCALARS, st.lists(SCALARS, max_size=4)))
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_yaml_literal_reads_back(value: object) -> None:
    assert yaml.safe_load(yaml_literal(value)) == value


def test_yaml_literal_float_forms() -> None:
    assert yaml_literal(1e-05) == "1.0e-05"
    assert yaml_literal(1e16) == "1.0e+16"
    assert yaml_literal(2.0) == "2.0"
    assert yaml_literal(math.inf) == ".inf"
    assert type(yaml.safe_load(yaml_literal(3.0))) is float


# --------------------------------------------------------------------------- JSON


NESTED_JSON = {
    "training": {"lr0": "hpcsweep~loguniform(1e-5, 1e-1)", "epochs": 10, "momentum": 0.9},
    "layers": [{"width": 64}, {"width": "orion~choices([32, 64])", "act": "relu"}],
    "betas": [0.9, 0.999],
    "flag": False,
    "note": None,
}


def test_json_nested_paths(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.json", json.dumps(NESTED_JSON)), "--config")
    assert list(template.priors()) == ["/training/lr0", "/layers/1/width"]


def test_json_render_in_place(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.json", json.dumps(NESTED_JSON)), "--config")
    document = json.loads(template.render({"/training/lr0": 0.001, "/layers/1/width": 32}))
    assert document == {
        "training": {"lr0": 0.001, "epochs": 10, "momentum": 0.9},
        "layers": [{"width": 64}, {"width": 32, "act": "relu"}],
        "betas": [0.9, 0.999],
        "flag": False,
        "note": None,
    }
    assert list(document) == list(NESTED_JSON)
    assert list(document["training"]) == ["lr0", "epochs", "momentum"]


def test_json_root_list(tmp_path: Path) -> None:
    text = json.dumps([1, "orion~uniform(0, 1)", {"a": "orion~choices(['x', 'y'])"}])
    template = load_template(write(tmp_path, "cfg.json", text), "--config")
    assert list(template.priors()) == ["/1", "/2/a"]
    assert json.loads(template.render({"/1": 0.5, "/2/a": "y"})) == [1, 0.5, {"a": "y"}]


def test_json_float_reads_back(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, "cfg.json", '{"lr": "orion~uniform(0, 1)"}'), "--config")
    value = 0.1 + 0.2
    assert json.loads(template.render({"/lr": value}))["lr"] == value


# -------------------------------------------------------------------- saved state


@pytest.mark.parametrize(("name", "text"), [("cfg.yaml", NESTED_YAML), ("cfg.json", json.dumps(NESTED_JSON))])
def test_state_survives_deleted_file(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, name, text)
    template = load_template(path, "--config")
    state = json.loads(json.dumps(template.to_json()))
    path.unlink()

    restored = Template.from_json(state)
    assert restored == template
    space = Space(template.priors())
    rng = random.Random(0)
    for _ in range(20):
        params = space.sample(rng)
        assert restored.render(params) == template.render(params)


# ------------------------------------------------------------------------ errors


def test_template_error_is_usage_error() -> None:
    assert issubclass(TemplateError, UsageError)


def test_missing_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cfg.yaml: file not found"):
        load_template(tmp_path / "cfg.yaml", "--config")


@pytest.mark.parametrize("name", ["cfg.ini", "cfg.toml", "cfg"])
def test_template_unknown_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(TemplateError, match=r"must be YAML \(.yaml, .yml\) or JSON"):
        load_template(write(tmp_path, name, "a = 1\n"), "--config")


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as info:
        load_template(write(tmp_path, "cfg.yaml", "a: 1\nb: [1, 2\n"), "--config")
    message = str(info.value)
    assert "invalid YAML (line 3" in message
    assert "\n" not in message


def test_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="invalid JSON"):
        load_template(write(tmp_path, "cfg.json", '{"a": 1,}'), "--config")


def test_yaml_multiple_documents(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="invalid YAML"):
        load_template(write(tmp_path, "cfg.yaml", "a: 1\n---\nb: 2\n"), "--config")


def test_template_prior_error_names_path(tmp_path: Path) -> None:
    text = "optim:\n  lr: 'orion~loguniform(0, 1)'\n"
    with pytest.raises(TemplateError, match="cfg.yaml: /optim/lr: loguniform: low must be above 0"):
        load_template(write(tmp_path, "cfg.yaml", text), "--config")


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 'orion~uniform(0, 1)'\nb: *x\n",
        "base: &b {lr: 'orion~uniform(0, 1)'}\nrun:\n  <<: *b\n",
    ],
)
def test_yaml_alias_to_prior(tmp_path: Path, text: str) -> None:
    with pytest.raises(TemplateError, match="reused at .* through a YAML alias"):
        load_template(write(tmp_path, "cfg.yaml", text), "--config")


def test_yaml_alias_to_fixed_value(tmp_path: Path) -> None:
    text = "a: &x [1, 2]\nb: *x\nc: 'orion~uniform(0, 1)'\n"
    template = load_template(write(tmp_path, "cfg.yaml", text), "--config")
    assert yaml.safe_load(template.render({"/c": 0.5})) == {"a": [1, 2], "b": [1, 2], "c": 0.5}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("cfg.yaml", "a: 'orion~uniform(0, 1)'\na: 2\n"),
        ("cfg.yaml", "m:\n  a: 1\n  a: 'orion~uniform(0, 1)'\n"),
        ("cfg.json", '{"a": "orion~uniform(0, 1)", "a": 2}'),
    ],
)
def test_duplicate_key(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(TemplateError, match="appears twice"):
        load_template(write(tmp_path, name, text), "--config")


@pytest.mark.parametrize(
    ("name", "text"), [("cfg.yaml", "'orion~uniform(0, 1)'\n"), ("cfg.json", '"orion~uniform(0, 1)"')]
)
def test_whole_document_prior(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(TemplateError, match="the whole document is a prior"):
        load_template(write(tmp_path, name, text), "--config")


@pytest.mark.parametrize(
    ("name", "text"), [("cfg.yaml", "a/b: 'orion~uniform(0, 1)'\n"), ("cfg.json", '{"a/b": 1}')]
)
def test_key_with_slash(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(TemplateError, match="contains '/'"):
        load_template(write(tmp_path, name, text), "--config")


@pytest.mark.parametrize("style", [">", "|"])
def test_block_scalar_prior_rejected(tmp_path: Path, style: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(f"a: {style}\n  orion~uniform(0, 1)\nb: 2\n")
    with pytest.raises(TemplateError, match="block scalar"):
        load_template(path, "--config")
