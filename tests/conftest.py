"""Shared fixtures: an in-process CLI runner and helpers for small sweeps."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpcsweep.cli import main


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``hpcsweep`` in this process with ``--root`` under tmp_path; return a Result."""
    root = tmp_path / "runs"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPCSWEEP_ROOT", str(root))

    def run(*args: str) -> Result:
        out, err = io.StringIO(), io.StringIO()
        package_logger = logging.getLogger("hpcsweep")
        saved = (package_logger.handlers[:], package_logger.level, package_logger.propagate)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        finally:
            package_logger.handlers[:], package_logger.level, package_logger.propagate = saved
        return Result(code, out.getvalue(), err.getvalue())

    run.root = root  # type: ignore[attr-defined]
    return run


@pytest.fixture
def script(tmp_path: Path):
    """Write a Python script into tmp_path and return its path."""

    def write(body: str, name: str = "train.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


def process_alive(pid: int) -> bool:
    """Return True if ``pid`` runs and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def slurm_ready() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    # A node is usable while it finishes killed jobs ("completing") or carries flags ("idle+").
    usable = ("idle", "mixed", "allocated", "completing")
    return result.returncode == 0 and any(state in result.stdout for state in usable)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip Slurm tests without a cluster, unless HPCSWEEP_REQUIRE_SLURM=1 (as in CI)."""
    if slurm_ready():
        return
    if os.environ.get("HPCSWEEP_REQUIRE_SLURM") == "1" and any("slurm" in item.keywords for item in items):
        raise pytest.UsageError("HPCSWEEP_REQUIRE_SLURM=1 but no Slurm cluster answers sinfo; run .ci/start-slurm.sh")
    skip = pytest.mark.skip(reason="no running Slurm cluster (start one with .ci/start-slurm.sh)")
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(skip)


PYTHON = sys.executable
