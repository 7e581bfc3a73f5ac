"""Helpers shared by the scripts in bench/: timing, the machine, tables and the results files.

The machine these benchmarks run on is shared and noisy, so every script measures
a baseline in the same run (such as ``python -c pass``) and reports each figure
as a ratio to it, beside the absolute time.  Subprocess timings are interleaved
(one run of each command per round) so that a burst of load from elsewhere hits
every command alike.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "results.jsonl"
DOCUMENT = REPOSITORY / "BENCHMARKS.md"
PYTHON = sys.executable


def describe_machine() -> dict[str, Any]:
    """Describe the machine and its load when the run starts."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            match = re.search(r"^model name\s*:\s*(.+)$", handle.read(), re.MULTILINE)
        if match:
            model = match.group(1).strip()
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_1min": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['date']}, {info['cores']} cores ({info['cpu']}), Python {info['python']}, "
        f"{info['system']}, 1-minute load {info['load_1min']} at the start"
    )


def wall_s(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> float:
    """Run ``argv`` with its output discarded; return its wall time in seconds."""
    started = time.perf_counter()
    completed = subprocess.run(
        list(argv), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - started
    if check and completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited with {completed.returncode}: "
            f"{completed.stderr.decode(errors='replace')[-2000:]}"
        )
    return elapsed


def interleaved_wall_s(
    commands: dict[str, Sequence[str]],
    repeats: int,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Time each command ``repeats`` times, one run of every command per round."""
    for _ in range(warmup):
        for argv in commands.values():
            wall_s(argv, env, cwd)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeats):
        for label, argv in commands.items():
            times[label].append(wall_s(argv, env, cwd))
    return times


def timed(function: Callable[..., Any], *arguments: Any) -> tuple[float, Any]:
    """Call ``function(*arguments)``; return its wall time in seconds and its value."""
    started = time.perf_counter()
    value = function(*arguments)
    return time.perf_counter() - started, value


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def append_result(benchmark: str, info: dict[str, Any], figures: dict[str, Any]) -> None:
    """Append one run's figures to bench/results.jsonl, the history of every run."""
    record = {"benchmark": benchmark, "machine": info, "figures": figures}
    with open(RESULTS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def update_document(benchmark: str, text: str) -> None:
    """Replace the section of BENCHMARKS.md between the markers of ``benchmark`` with ``text``."""
    begin, end = f"<!-- begin {benchmark} -->", f"<!-- end {benchmark} -->"
    document = DOCUMENT.read_text(encoding="utf-8")
    start, stop = document.find(begin), document.find(end)
    if start < 0 or stop < start:
        raise SystemExit(
            f"{DOCUMENT} has no markers {begin!r} and {end!r}; add them where the "
            f"results of {benchmark} belong"
        )
    document = document[: start + len(begin)] + "\n" + text.rstrip("\n") + "\n" + document[stop:]
    DOCUMENT.write_text(document, encoding="utf-8")


def seconds(value: float) -> str:
    return f"{value:.3f} s"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.1f}×"


def table_row(label: str, value_s: float, baseline_s: float, target: str = "") -> list[str]:
    """Return a table row: the label, the time, its ratio to the baseline and the target."""
    return [label, seconds(value_s), ratio(value_s, baseline_s), target]
