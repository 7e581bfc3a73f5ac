"""The user's command line: prior tokens, pass-through tokens, rendering and saved state."""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcsweep.algorithms import RandomSearch
from hpcsweep.cmdline import PRIOR_TOKEN, CommandLine, PriorToken, format_scalar
from hpcsweep.errors import TemplateError, UsageError
from hpcsweep.planner import SubmitRequest, plan_submission
from hpcsweep.priors import Value
from hpcsweep.store import Store

SLOW_SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@pytest.fixture
def train(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text("print('ok')\n")
    return path


def parse(argv: list[str], cwd: Path, **kwargs: object) -> CommandLine:
    return CommandLine.parse(argv, cwd=cwd, **kwargs)  # type: ignore[arg-type]


def after(argv: list[str], option: str, count: int = 1) -> list[str]:
    index = argv.index(option)
    return argv[index + 1: index + 1 + count]


# ----------------------------------------------------------------- prior tokens


@pytest.mark.parametrize(
    ("token", "name"),
    [
        ("--lr~uniform(0, 1)", "/lr"),
        ("-x~uniform(0, 1)", "/x"),
        ("--optim.lr~loguniform(1e-4, 1e-2)", "/optim.lr"),
        ("--b_optim.lr~loguniform(1e-6, 0.5, shape=4)", "/b_optim.lr"),
        ("--no-ema~choices([True, False])", "/no-ema"),
        ("--model.layers.0.width~choices([1, 2])", "/model.layers.0.width"),
    ],
)
def test_prior_token_name(tmp_path: Path, train: Path, token: str, name: str) -> None:
    command = parse(["python", "train.py", token], tmp_path)
    assert list(command.space) == [name]
    prior_token = command.tokens[-1]
    assert isinstance(prior_token, PriorToken)
    assert prior_token.option == token.split("~")[0]


@pytest.mark.parametrize(
    "token",
    [
        "--tags=exp,ablation",
        "--layers=[64,128]",
        "--extra=key=value",
        "--cache=~/scratch",
        "~/datasets",
        "--data~/datasets",
        "-d~/x",
        "--lr=0.1",
        "-1",
        "-0.5e-3",
        "--shift=-1",
        "a,b,c",
        "x~y",
        "--x=a~uniform(0, 1)",
        "uniform(0, 1)",
        "choices({'sgd': 0.2, 'adam': 0.8})",
        "--optim.lr",
        "--",
        "-",
        "",
        "with space",
        "quote's \"here\"",
        "ünïcödé",
        "$HOME",
        "*.txt",
        "{not_a_placeholder}",
    ],
)
def test_fixed_token_verbatim(tmp_path: Path, train: Path, token: str) -> None:
    command = parse(["python", "train.py", "--fixed", token, "--lr~uniform(0, 1)"], tmp_path)
    argv = command.render({"/lr": 0.5})
    assert argv == ["python", str(train), "--fixed", token, "--lr", "0.5"]


def test_field_command_verbatim(tmp_path: Path, train: Path) -> None:
    argv = ["python", "train.py", "--tags=exp,ablation", "--layers=[64,128]", "--extra=key=value",
            "--cache=~/scratch", "--data", "~/datasets", "--lr~loguniform(1e-4, 1e-1)"]
    command = parse(argv, tmp_path)
    assert list(command.space) == ["/lr"]
    rendered = command.render({"/lr": 0.0123})
    assert rendered == ["python", str(train), "--tags=exp,ablation", "--layers=[64,128]",
                        "--extra=key=value", "--cache=~/scratch", "--data", "~/datasets",
                        "--lr", "0.0123"]


def test_prior_token_regex_home_path() -> None:
    assert PRIOR_TOKEN.match("--data~/datasets") is None
    assert PRIOR_TOKEN.match("--data=~/datasets") is None
    assert PRIOR_TOKEN.match("--lr~uniform(0, 1)") is not None


def test_malformed_prior_names_option(tmp_path: Path, train: Path) -> None:
    with pytest.raises(UsageError, match=r"^--lr: malformed prior 'loguniform\(1e-5'"):
        parse(["python", "train.py", "--lr~loguniform(1e-5"], tmp_path)


def test_prior_defined_twice(tmp_path: Path, train: Path) -> None:
    with pytest.raises(UsageError, match="parameter /lr is defined twice"):
        parse(["python", "train.py", "--lr~uniform(0, 1)", "--lr~uniform(0, 2)"], tmp_path)


# -------------------------------------------------------------------- rendering


def test_render_value_as_separate_token(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--lr~loguniform(1e-5, 1)", "-x~uniform(-5, 5)"], tmp_path)
    argv = command.render({"/lr": 0.0123, "/x": -2.5})
    assert argv[2:] == ["--lr", "0.0123", "-x", "-2.5"]


@given(st.floats(allow_nan=False, allow_infinity=False))
@SLOW_SETTINGS
def test_float_token_reads_back(value: float) -> None:
    assert float(format_scalar(value)) == value


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
@SLOW_SETTINGS
def test_rendered_float_reads_back(value: float) -> None:
    with tempfile.TemporaryDirectory() as directory:
        command = parse(["true", "--x~uniform(-1e300, 1e300)"], Path(directory))
    assert float(after(command.render({"/x": value}), "--x")[0]) == value


def test_render_shape_as_tokens(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--b_optim.lr~loguniform(1e-6, 0.5, shape=4)"], tmp_path)
    value = [1e-6, 0.25, 0.5, 3e-3]
    assert command.render({"/b_optim.lr": value})[2:] == ["--b_optim.lr", "1e-06", "0.25", "0.5", "0.003"]


def test_render_boolean_switch(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--amp~choices([True, False])"], tmp_path)
    assert command.render_mode("/amp") == "switch"
    assert command.render({"/amp": True})[2:] == ["--amp"]
    assert command.render({"/amp": False})[2:] == []


def test_render_list_choice_as_tokens(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--patch_size~choices([[4, 8], [2, 2]])"], tmp_path)
    assert command.render_mode("/patch_size") == "tokens"
    assert command.render({"/patch_size": [4, 8]})[2:] == ["--patch_size", "4", "8"]


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("json", [4, 8], ["--size", "[4, 8]"]),
        ("comma", [4, 8], ["--size", "4,8"]),
        ("equals", [4, 8], ["--size=[4, 8]"]),
        ("value", [4, 8], ["--size", "[4, 8]"]),
        ("tokens", [4, 8], ["--size", "4", "8"]),
    ],
)
def test_render_mode_override(tmp_path: Path, train: Path, mode: str, value: Value, expected: list[str]) -> None:
    command = parse(["python", "train.py", "--size~choices([[4, 8], [2, 2]])"], tmp_path,
                    render_modes={"/size": mode})
    assert command.render({"/size": value})[2:] == expected


@pytest.mark.parametrize(
    ("mode", "expected_true", "expected_false"),
    [("value", ["--amp", "True"], ["--amp", "False"]), ("equals", ["--amp=True"], ["--amp=False"])],
)
def test_render_boolean_override(
    tmp_path: Path, train: Path, mode: str, expected_true: list[str], expected_false: list[str]
) -> None:
    command = parse(["python", "train.py", "--amp~choices([True, False])"], tmp_path, render_modes={"/amp": mode})
    assert command.render({"/amp": True})[2:] == expected_true
    assert command.render({"/amp": False})[2:] == expected_false


def test_render_unknown_parameter(tmp_path: Path, train: Path) -> None:
    with pytest.raises(UsageError, match="'/nope' is not a parameter; parameters are /lr"):
        parse(["python", "train.py", "--lr~uniform(0, 1)"], tmp_path, render_modes={"/nope": "json"})


def test_render_unknown_mode(tmp_path: Path, train: Path) -> None:
    with pytest.raises(UsageError, match="unknown mode; valid modes are"):
        parse(["python", "train.py", "--lr~uniform(0, 1)"], tmp_path, render_modes={"/lr": "yaml"})


def test_render_switch_needs_boolean(tmp_path: Path, train: Path) -> None:
    with pytest.raises(UsageError, match="cannot be a switch"):
        parse(["python", "train.py", "--lr~uniform(0, 1)"], tmp_path, render_modes={"/lr": "switch"})


def test_render_placeholders(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--ckpt", "{trial.working_dir}/ckpt", "--id={trial.id}"], tmp_path)
    argv = command.render({}, {"{trial.working_dir}": "/w/t1", "{trial.id}": "t1"})
    assert argv[2:] == ["--ckpt", "/w/t1/ckpt", "--id=t1"]


# -------------------------------------------- what a script's argparse receives


def test_script_parses_dotted_and_shaped(tmp_path: Path, train: Path) -> None:
    command = parse(
        ["python", "train.py", "--optim.lr~loguniform(1e-4, 1e-2)",
         "--b_optim.lr~loguniform(1e-6, 0.5, shape=4)", "--model.depth=12", "--data.root=/scratch/ds"],
        tmp_path,
    )
    params = command.space.sample(random.Random(0))
    argv = command.render(params)
    assert argv[-2:] == ["--model.depth=12", "--data.root=/scratch/ds"]

    script = argparse.ArgumentParser()
    script.add_argument("--optim.lr", type=float)
    script.add_argument("--b_optim.lr", type=float, nargs="*")
    script.add_argument("--model.depth", type=int)
    script.add_argument("--data.root")
    parsed = vars(script.parse_args(argv[2:]))
    assert parsed["optim.lr"] == params["/optim.lr"]
    assert parsed["b_optim.lr"] == params["/b_optim.lr"]
    assert len(parsed["b_optim.lr"]) == 4
    assert parsed["model.depth"] == 12
    assert parsed["data.root"] == "/scratch/ds"


def test_script_parses_switches(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--amp~choices([True, False])",
                     "--no-ema~choices([True, False])"], tmp_path)
    script = argparse.ArgumentParser()
    script.add_argument("--amp", action="store_true")
    script.add_argument("--no-ema", action="store_true")
    for amp in (True, False):
        for no_ema in (True, False):
            argv = command.render({"/amp": amp, "/no-ema": no_ema})
            parsed = script.parse_args(argv[2:])
            assert parsed.amp is amp
            assert parsed.no_ema is no_ema


def test_script_parses_list_values(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--patch_size~choices([[4, 8], [2, 2]])",
                     "--numbers~uniform(1, 9, shape=3, discrete=True)"], tmp_path)
    script = argparse.ArgumentParser()
    script.add_argument("--patch_size", type=int, nargs=2)
    script.add_argument("--numbers", type=int, nargs=3)
    rng = random.Random(1)
    for _ in range(10):
        params = command.space.sample(rng)
        parsed = script.parse_args(command.render(params)[2:])
        assert parsed.patch_size == params["/patch_size"]
        assert parsed.numbers == params["/numbers"]


# -------------------------------------------------------- program and script


def test_script_made_absolute(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "-u", "train.py", "data.csv"], tmp_path)
    assert command.render({}) == ["python", "-u", str(train), "data.csv"]
    assert command.script_path() == str(train)


@pytest.mark.parametrize(
    "argv",
    [
        ["python", "-m", "http.server", "8000"],
        ["python", "-mhttp.server", "8000"],
        ["python", "-c", "print(1)", "x"],
        ["python", "-W", "ignore", "-u", "-m", "pkg"],
        ["bash", "-c", "echo hi"],
        ["bash", "-o", "pipefail", "-c", "echo hi"],
        ["perl", "-e", "print 1"],
        ["sh", "-s", "arg"],
    ],
)
def test_interpreter_without_script(tmp_path: Path, argv: list[str]) -> None:
    command = parse(argv, tmp_path)
    assert command.render({}) == argv


def test_interpreter_value_option_before_script(tmp_path: Path, train: Path) -> None:
    (tmp_path / "run.sh").write_text("echo hi\n")
    command = parse(["bash", "-o", "pipefail", "run.sh"], tmp_path)
    assert command.render({}) == ["bash", "-o", "pipefail", str(tmp_path / "run.sh")]
    command = parse(["python", "-W", "ignore", "train.py"], tmp_path)
    assert command.render({}) == ["python", "-W", "ignore", str(train)]


@pytest.mark.parametrize("program", ["python", "python3", "bash", "sh"])
def test_missing_script(tmp_path: Path, program: str) -> None:
    with pytest.raises(UsageError, match="script 'missing.x' not found"):
        parse([program, "missing.x"], tmp_path)


def test_script_placeholder_not_checked(tmp_path: Path) -> None:
    command = parse(["python", "{exp.working_dir}/train.py"], tmp_path)
    assert command.render({}, {"{exp.working_dir}": "/e"}) == ["python", "/e/train.py"]


def test_program_not_found(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="program 'no-such-program-x' not found on PATH"):
        parse(["no-such-program-x"], tmp_path)


def test_program_not_executable(tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    with pytest.raises(UsageError, match=r"not executable; run: chmod \+x ./run.sh"):
        parse(["./run.sh"], tmp_path)


def test_relative_program_made_absolute(tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    assert parse(["./run.sh", "--a=1"], tmp_path).render({}) == [str(path), "--a=1"]


def test_empty_command(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no command given"):
        parse([], tmp_path)


# --------------------------------------------------------------------- template


def test_config_value_replaced(tmp_path: Path, train: Path) -> None:
    (tmp_path / "cfg.yaml").write_text("lr: 'orion~uniform(0, 1)'\n")
    for argv, expected in [
        (["--config", "cfg.yaml"], ["--config", "/w/cfg.yaml"]),
        (["--config=cfg.yaml"], ["--config=/w/cfg.yaml"]),
    ]:
        command = parse(["python", "train.py", *argv], tmp_path)
        assert list(command.space) == ["/lr"]
        assert command.render({"/lr": 0.5}, config_path="/w/cfg.yaml")[2:] == expected


def test_config_option_custom(tmp_path: Path, train: Path) -> None:
    (tmp_path / "cfg.yaml").write_text("lr: 'orion~uniform(0, 1)'\n")
    command = parse(["python", "train.py", "--config", "x.ini", "--hparams", "cfg.yaml"], tmp_path,
                    config_option="--hparams")
    assert command.render({"/lr": 0.5}, config_path="/w/cfg.yaml")[2:] == [
        "--config", "x.ini", "--hparams", "/w/cfg.yaml"]


def test_config_given_twice(tmp_path: Path, train: Path) -> None:
    (tmp_path / "cfg.yaml").write_text("a: 1\n")
    with pytest.raises(UsageError, match="--config is given twice"):
        parse(["python", "train.py", "--config", "cfg.yaml", "--config=cfg.yaml"], tmp_path)


def test_config_without_path(tmp_path: Path, train: Path) -> None:
    with pytest.raises(UsageError, match="--config needs a file path"):
        parse(["python", "train.py", "--config"], tmp_path)


def test_config_missing(tmp_path: Path, train: Path) -> None:
    with pytest.raises(TemplateError, match="file not found"):
        parse(["python", "train.py", "--config", "nope.yaml"], tmp_path)


def test_same_name_cli_and_template(tmp_path: Path, train: Path) -> None:
    (tmp_path / "cfg.yaml").write_text("lr: 'orion~uniform(0, 1)'\n")
    with pytest.raises(UsageError, match="defined both on the command line and in the template cfg.yaml"):
        parse(["python", "train.py", "--config", "cfg.yaml", "--lr~uniform(0, 1)"], tmp_path)


def test_dotted_option_not_nested_key(tmp_path: Path, train: Path) -> None:
    (tmp_path / "cfg.yaml").write_text("a:\n  b: 'orion~uniform(0, 1)'\n")
    command = parse(["python", "train.py", "--config", "cfg.yaml", "--a.b~uniform(5, 6)"], tmp_path)
    assert list(command.space) == ["/a.b", "/a/b"]
    params = {"/a.b": 5.5, "/a/b": 0.25}
    assert after(command.render(params, config_path="c.yaml"), "--a.b") == ["5.5"]
    assert yaml.safe_load(command.render_config(params) or "") == {"a": {"b": 0.25}}


# ------------------------------------------------------------------ saved state


ROUND_TRIP_TEMPLATE = {
    "training": {"lr0": "orion~loguniform(1e-5, 1e-1)", "epochs": 30, "momentum": 0.9,
                 "schedule": "hpcsweep~choices(['cosine', 'step'])"},
    "layers": [
        {"width": 64, "act": "relu"},
        {"width": "orion~choices([32, 64, 128])", "act": "gelu", "dropout": 0.1},
        {"width": 16, "act": "relu"},
    ],
    "betas": [0.9, 0.999],
    "name": "baseline",
}
ROUND_TRIP_ARGV = [
    "python", "train.py", "--config", "tmpl.json", "--seed", "555",
    "--lr~loguniform(1e-5, 1.0)",
    "--non-prior", "choices({'sgd': 0.2, 'adam': 0.8})",
    "--prior~choices([\"sgd\", \"adam\"])",
    "--a.b~uniform(0, 1)",
]


def test_state_round_trip(tmp_path: Path, train: Path) -> None:
    template_path = tmp_path / "tmpl.json"
    template_path.write_text(json.dumps(ROUND_TRIP_TEMPLATE))
    command = parse(ROUND_TRIP_ARGV, tmp_path)
    state = json.loads(json.dumps(command.to_json()))
    template_path.unlink()
    train.unlink()

    restored = CommandLine.from_json(state)
    assert list(restored.space) == list(command.space) == [
        "/lr", "/prior", "/a.b", "/training/lr0", "/training/schedule", "/layers/1/width"]
    assert restored.space.to_json() == command.space.to_json()

    rng = random.Random(555)
    for _ in range(50):
        params = json.loads(json.dumps(command.space.sample(rng)))
        argv = restored.render(params, config_path="/w/tmpl.json")
        assert argv == command.render(params, config_path="/w/tmpl.json")
        config = restored.render_config(params)
        assert config == command.render_config(params)

        assert argv[:6] == ["python", str(train), "--config", "/w/tmpl.json", "--seed", "555"]
        assert after(argv, "--non-prior") == ["choices({'sgd': 0.2, 'adam': 0.8})"]
        assert after(argv, "--a.b") == [repr(params["/a.b"])]
        assert after(argv, "--prior") == [params["/prior"]]
        assert float(after(argv, "--lr")[0]) == params["/lr"]

        document = json.loads(config or "")
        assert document["training"] == {"lr0": params["/training/lr0"], "epochs": 30, "momentum": 0.9,
                                        "schedule": params["/training/schedule"]}
        assert document["layers"][0] == {"width": 64, "act": "relu"}
        assert document["layers"][1] == {"width": params["/layers/1/width"], "act": "gelu", "dropout": 0.1}
        assert document["layers"][2] == {"width": 16, "act": "relu"}
        assert document["betas"] == [0.9, 0.999]
        assert document["name"] == "baseline"


def test_state_keeps_render_modes(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--size~choices([[4, 8], [2, 2]])"], tmp_path,
                    render_modes={"/size": "comma"})
    restored = CommandLine.from_json(json.loads(json.dumps(command.to_json())))
    assert restored.render({"/size": [4, 8]})[2:] == ["--size", "4,8"]


def test_state_unknown_format() -> None:
    with pytest.raises(UsageError, match="saved parser state has format 99"):
        CommandLine.from_json({"format": 99, "tokens": []})


# A generated sweep: option names, priors, fixed tokens and an optional YAML template
# whose keys are upper case, so that they never clash with the lower-case options.

OPTION_NAMES = st.from_regex(r"--?[a-z][a-z0-9_.\-]{0,6}", fullmatch=True)
EXPRESSIONS = st.one_of(
    st.builds(lambda low, width: f"uniform({low!r}, {low + width!r})",
              st.floats(-1e3, 1e3), st.floats(1e-3, 1e3)),
    st.builds(lambda low, width, shape: f"uniform({low}, {low + width}, discrete=True, shape={shape})",
              st.integers(-50, 50), st.integers(1, 50), st.integers(1, 3)),
    st.builds(lambda low, factor: f"loguniform({low!r}, {low * factor!r})",
              st.floats(1e-8, 1.0), st.floats(1.5, 1e6)),
    st.builds(lambda mu, sigma: f"normal({mu!r}, {sigma!r})", st.floats(-10, 10), st.floats(0.1, 10)),
    st.just("choices([True, False])"),
    st.just("choices([[4, 8], [2, 2]])"),
    st.just("choices({'sgd': 0.25, 'adam': 0.75})"),
    st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True).map(lambda options: f"choices({options!r})"),
)
FIXED_TOKENS = st.text(max_size=12).filter(
    lambda text: PRIOR_TOKEN.match(text) is None and not text.startswith("--config")
)


@st.composite
def sweeps(draw: st.DrawFn) -> tuple[list[str], dict[str, object] | None]:
    options = draw(st.lists(OPTION_NAMES, max_size=5, unique_by=lambda option: option.lstrip("-")))
    argv: list[str] = []
    for option in options:
        argv += draw(st.lists(FIXED_TOKENS, max_size=2))
        argv.append(f"{option}~{draw(EXPRESSIONS)}")
    argv += draw(st.lists(FIXED_TOKENS, max_size=2))

    template: dict[str, object] | None = None
    if draw(st.booleans()):
        keys = draw(st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True), min_size=1,
                             max_size=4, unique=True))
        template = {}
        for key in keys:
            if draw(st.booleans()):
                template[key] = f"orion~{draw(EXPRESSIONS)}"
            else:
                template[key] = [draw(st.floats(allow_nan=False, allow_infinity=False)),
                                 {"x": f"hpcsweep~{draw(EXPRESSIONS)}", "y": draw(st.integers())}]
    return argv, template


@given(sweeps(), st.integers(0, 2**32))
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=40)
def test_plan_save_load_render(sweep: tuple[list[str], dict[str, object] | None], seed: int) -> None:
    arguments, template = sweep
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "train.py").write_text("print('ok')\n")
        command = ["python", "train.py", *arguments]
        if template is not None:
            (root / "cfg.yaml").write_text(yaml.safe_dump(template, sort_keys=False))
            command += ["--config", "cfg.yaml"]
        store = Store(root / "runs")
        request = SubmitRequest(name="prop", command=command, max_trials=5, seed=seed, cwd=root)
        plan = plan_submission(store, request)

        store.experiment_dir("prop").mkdir(parents=True)
        store.save_experiment(plan.experiment)
        (root / "cfg.yaml").unlink(missing_ok=True)
        (root / "train.py").unlink()
        loaded = store.load_experiment("prop")
        restored = CommandLine.from_json(loaded["parser_state"])

        for trial in plan.new_trials:
            params = json.loads(json.dumps(trial["params"]))
            assert restored.space == plan.command.space
            restored_argv = restored.render(params, config_path="/w/cfg.yaml")
            assert restored_argv == plan.command.render(trial["params"], config_path="/w/cfg.yaml")
            assert restored.render_config(params) == plan.command.render_config(trial["params"])
            fixed = [token for token in restored.tokens[2:] if isinstance(token, str)]
            assert fixed == [text for text in arguments if PRIOR_TOKEN.match(text) is None]


def test_random_plan_reproducible_after_load(tmp_path: Path, train: Path) -> None:
    command = parse(["python", "train.py", "--lr~loguniform(1e-5, 1)", "--opt~choices(['a', 'b'])"], tmp_path)
    restored = CommandLine.from_json(json.loads(json.dumps(command.to_json())))
    first = RandomSearch(seed=3).suggest(command.space, [], 10)
    second = RandomSearch(seed=3).suggest(restored.space, [], 10)
    assert first == second


def test_template_text_in_state(tmp_path: Path, train: Path) -> None:
    text = textwrap.dedent(
        """\
        # keep me
        lr: 'orion~uniform(0, 1)'
        """
    )
    (tmp_path / "cfg.yaml").write_text(text)
    command = parse(["python", "train.py", "--config", "cfg.yaml"], tmp_path)
    (tmp_path / "cfg.yaml").unlink()
    restored = CommandLine.from_json(json.loads(json.dumps(command.to_json())))
    assert restored.render_config({"/lr": 0.5}) == "# keep me\nlr: 0.5\n"


@pytest.mark.parametrize("token", ["~loguniform(1e-5, 1)", "--lr=~uniform(0, 1)"])
def test_detached_prior_warns(
    tmp_path: Path, train: Path, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    command = parse(["python", "train.py", "--lr", token], tmp_path)
    assert list(command.space) == []
    assert command.render({})[2:] == ["--lr", token]
    assert "passed to the script as text, not read as a prior" in caplog.text


def test_home_path_no_warning(tmp_path: Path, train: Path, caplog: pytest.LogCaptureFixture) -> None:
    parse(["python", "train.py", "--data", "~/uniform(1)", "--cache=~/scratch"], tmp_path)
    assert caplog.text == ""
