"""Invalid ``submit`` input: exit status 2, one ``Error:`` line, and nothing in the store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TEMPLATES = {
    "cfg.yaml": "optim:\n  lr: 'orion~loguniform(1e-5, 1e-1)'\n",
    "cfg.ini": "[optim]\nlr = 0.1\n",
    "cfg.toml": "lr = 0.1\n",
    "broken.yaml": "optim:\n  lr: [0.1, 0.2\n  wd: 1\n",
    "lr.json": '{"lr": "orion~uniform(0, 1)"}',
}

# Each case: the arguments after "submit", the command after "--", and the parts
# the one-line message must contain (the invalid value, then the fix).
CASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "malformed prior": (
        [], ["python", "train.py", "--lr~loguniform(1e-5"],
        ["--lr: malformed prior 'loguniform(1e-5'", "balanced brackets"]),
    "unknown prior": (
        [], ["python", "train.py", "--lr~lognormal(0, 1)"],
        ["--lr: unknown prior 'lognormal'", "valid priors are uniform, loguniform"]),
    "low equals high": (
        [], ["python", "train.py", "--lr~uniform(1, 1)"],
        ["--lr: uniform: low (1) must be below high (1)", "widen the range"]),
    "low above high": (
        [], ["python", "train.py", "--lr~loguniform(1e-3, 1e-5)"],
        ["--lr: loguniform: low (0.001) must be below high (1e-05)", "swap them"]),
    "loguniform zero": (
        [], ["python", "train.py", "--lr~loguniform(0, 1)"],
        ["--lr: loguniform: low must be above 0, got 0", "use choices([0, ...])"]),
    "loguniform negative": (
        [], ["python", "train.py", "--wd~loguniform(-1, 1)"],
        ["--wd: loguniform: low must be above 0, got -1", "not exponents"]),
    "infinite high": (
        [], ["python", "train.py", "--lr~uniform(0, 1e999)"],
        ["--lr: uniform: high must be finite, got inf"]),
    "infinite low": (
        [], ["python", "train.py", "--lr~loguniform(-1e999, 1)"],
        ["--lr: loguniform: low must be finite, got -inf"]),
    "non-literal call": (
        [], ["python", "train.py", "--lr~__import__('os').system('touch pwned')"],
        ["--lr: malformed prior", "__import__('os').system('touch pwned')", "literal arguments"]),
    "non-literal argument": (
        [], ["python", "train.py", "--lr~uniform(__import__('os').system('touch pwned'), 1)"],
        ["--lr: prior", "is not a literal", "write numbers, strings, lists or dicts only"]),
    "template missing": (
        [], ["python", "train.py", "--config", "missing.yaml"],
        ["--config", "missing.yaml: file not found", "check the path"]),
    "template ini": (
        [], ["python", "train.py", "--config", "cfg.ini"],
        ["cfg.ini: the template must be YAML (.yaml, .yml) or JSON (.json), not '.ini'", "rename it"]),
    "template toml": (
        [], ["python", "train.py", "--config=cfg.toml"],
        ["cfg.toml", "not '.toml'"]),
    "template invalid yaml": (
        [], ["python", "train.py", "--config", "broken.yaml"],
        ["broken.yaml: invalid YAML (line 3", "fix the file"]),
    "prior twice on command line": (
        [], ["python", "train.py", "--lr~uniform(0, 1)", "--lr~loguniform(1e-5, 1)"],
        ["parameter /lr is defined twice on the command line", "keep one --lr~"]),
    "prior on command line and in template": (
        [], ["python", "train.py", "--config", "lr.json", "--lr~uniform(0, 1)"],
        ["parameter /lr is defined both on the command line and in the template lr.json", "remove one"]),
    "max trials zero": (
        ["--max-trials", "0"], ["python", "train.py", "--lr~uniform(0, 1)"],
        ["--max-trials 0: must be at least 1"]),
    "program not found": (
        [], ["no-such-program-hpcsweep", "--lr~uniform(0, 1)"],
        ["program 'no-such-program-hpcsweep' not found on PATH", "give its full path"]),
    "program not executable": (
        [], ["./run.sh", "--lr~uniform(0, 1)"],
        ["program './run.sh' is not executable", "chmod +x ./run.sh"]),
    "python script missing": (
        [], ["python", "missing.py", "--lr~uniform(0, 1)"],
        ["script 'missing.py' not found", "check the path"]),
    "bash script missing": (
        [], ["bash", "missing.sh", "--lr~uniform(0, 1)"],
        ["script 'missing.sh' not found", "bash would fail in every trial"]),
    "name with slash": (
        ["-n", "a/b"], ["python", "train.py", "--lr~uniform(0, 1)"],
        ["invalid experiment name 'a/b'", "no '/', '@' or spaces"]),
    "unknown algorithm": (
        ["--algorithm", "tpe"], ["python", "train.py", "--lr~uniform(0, 1)"],
        ["--algorithm 'tpe': unknown algorithm", "valid algorithms are random, grid"]),
    "render unknown parameter": (
        ["--render", "/wd=json"], ["python", "train.py", "--lr~uniform(0, 1)"],
        ["--render /wd=json: '/wd' is not a parameter", "parameters are /lr"]),
    "render unknown mode": (
        ["--render", "/lr=yaml"], ["python", "train.py", "--lr~uniform(0, 1)"],
        ["--render /lr=yaml: unknown mode", "valid modes are auto, value, equals, switch, tokens, json, comma"]),
    "render switch on number": (
        ["--render", "/lr=switch"], ["python", "train.py", "--lr~uniform(0, 1)"],
        ["--render /lr=switch", "cannot be a switch"]),
    "render without mode": (
        ["--render", "lr"], ["python", "train.py", "--lr~uniform(0, 1)"],
        ["expected KEY=VALUE, got 'lr'"]),
    "config given twice": (
        [], ["python", "train.py", "--config", "cfg.yaml", "--config", "lr.json"],
        ["--config is given twice"]),
}


@pytest.fixture
def workdir(tmp_path: Path, script: Callable[..., Path]) -> Path:
    script("print('ok')\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho ok\n")
    (tmp_path / "run.sh").chmod(0o644)
    for name, text in TEMPLATES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def assert_nothing_stored(cli: Any, name: str) -> None:
    root: Path = cli.root
    assert not (root / name).exists()
    assert not root.exists() or not any(root.iterdir())
    listed = cli("list")
    assert listed.exit_code == 0
    assert listed.stdout == ""


def assert_one_error(stderr: str, fragments: list[str]) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "submit"])
@pytest.mark.parametrize("case", list(CASES))
def test_submit_bad_input(cli: Any, workdir: Path, case: str, dry_run: bool) -> None:
    options, command, fragments = CASES[case]
    if "-n" not in options:
        options = ["-n", "bad", *options]
    flags = ["--dry-run"] if dry_run else ["--executor", "local"]

    result = cli("submit", *options, *flags, "--", *command)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert_one_error(result.stderr, fragments)
    assert_nothing_stored(cli, options[options.index("-n") + 1].split("/")[0])
    assert not (workdir / "pwned").exists()


def test_bad_input_nothing_executed(cli: Any, workdir: Path) -> None:
    for expression in ["__import__('os').system('touch pwned')", "uniform(0, exec('open(\"pwned\", \"w\")'))",
                       "choices([__import__('pathlib').Path('pwned').touch()])"]:
        result = cli("submit", "-n", "bad", "--executor", "local", "--", "python", "train.py", f"--lr~{expression}")
        assert result.exit_code == 2
        assert not (workdir / "pwned").exists()
        assert not (Path.cwd() / "pwned").exists()


def test_field_command_dry_run_argv(cli: Any, workdir: Path) -> None:
    result = cli(
        "submit", "-n", "punct", "--dry-run", "--show", "2", "--seed", "4", "--",
        "python", "train.py", "--tags=exp,ablation", "--layers=[64,128]", "--extra=key=value",
        "--cache=~/scratch", "--data", "~/datasets", "--lr~loguniform(1e-4, 1e-1)",
    )
    assert result.exit_code == 0, result.stderr
    params = [json.loads(line.split(":", 1)[1]) for line in result.stdout.splitlines()
              if line.startswith("  params: ")]
    argvs = [json.loads(line.split(":", 1)[1]) for line in result.stdout.splitlines()
             if line.startswith("  argv: ")]
    assert len(argvs) == 2
    assert len(params) == 2
    for trial_params, argv in zip(params, argvs):
        assert 1e-4 <= trial_params["/lr"] <= 1e-1
        assert argv == [
            "python", str(workdir / "train.py"), "--tags=exp,ablation", "--layers=[64,128]",
            "--extra=key=value", "--cache=~/scratch", "--data", "~/datasets",
            "--lr", repr(trial_params["/lr"]),
        ]
    assert_nothing_stored(cli, "punct")


def test_switch_rendering_shown_in_dry_run(cli: Any, workdir: Path) -> None:
    result = cli("submit", "-n", "amp", "--dry-run", "--", "python", "train.py",
                 "--amp~choices([True, False])", "--no-ema~choices([True, False])")
    assert result.exit_code == 0, result.stderr
    assert "/amp ~ choices([True, False])   rendered as: switch" in result.stdout
    assert "/no-ema ~ choices([True, False])   rendered as: switch" in result.stdout
    argvs = [json.loads(line.split(":", 1)[1]) for line in result.stdout.splitlines()
             if line.startswith("  argv: ")]
    assert argvs
    for argv in argvs:
        assert set(argv[2:]) <= {"--amp", "--no-ema"}


def test_valid_loguniform_wide_range(cli: Any, workdir: Path) -> None:
    result = cli("submit", "-n", "wide", "--dry-run", "--show", "10", "--max-trials", "10", "--",
                 "python", "train.py", "--lr~loguniform(0.0001, 1000)", "--wd~choices([0, 1e-6, 1e-4])")
    assert result.exit_code == 0, result.stderr
    params = [json.loads(line.split(":", 1)[1]) for line in result.stdout.splitlines()
              if line.startswith("  params: ")]
    assert len(params) == 10
    assert all(1e-4 <= trial["/lr"] <= 1000 for trial in params)
    assert all(trial["/wd"] in (0, 1e-6, 1e-4) for trial in params)
