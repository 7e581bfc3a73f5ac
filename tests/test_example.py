"""The digits example: a small seeded sweep on the local executor reaches a good accuracy."""

from __future__ import annotations

import json
import sys
from pathlib import Path


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"
TRIALS = 6
# With seed 2, three of the six sampled (C, gamma) pairs lie where the SVC fits the digits well.
SEED = 2


def test_digits_sweep_reaches_accuracy(cli) -> None:
    submitted = cli(
        "submit", "-n", "digits", "--max-trials", str(TRIALS), "--seed", str(SEED),
        "--executor", "local", "--parallelism", "2", "--time", "5", "--wait", "--poll-s", "0.5",
        "--", sys.executable, str(EXAMPLE / "train.py"), "--config", str(EXAMPLE / "config.yaml"),
        "--C~loguniform(1e-3, 1e3)",
    )
    assert submitted.exit_code == 0, submitted.stderr
    assert f"all trials ended: {TRIALS} completed" in submitted.stderr

    collected = cli("collect", "-n", "digits", "--format", "json")
    assert collected.exit_code == 0, collected.stderr
    rows = json.loads(collected.stdout)
    assert len(rows) == TRIALS
    assert {row["status"] for row in rows} == {"completed"}
    assert all(set(row["params"]) == {"/C", "/model/gamma"} for row in rows)

    best = rows[0]  # collect sorts by objective, lowest validation error first
    assert best["results"]["accuracy"] > 0.95
    assert best["objective"] == 1.0 - best["results"]["accuracy"]
    assert max(row["results"]["accuracy"] for row in rows) == best["results"]["accuracy"]
