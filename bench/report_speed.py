"""Benchmark ``hpcsweep report`` on 10,000 trials, and its page in headless Chromium.

The experiment is built without running anything: the planner records 10,000
trials over four priors, and array-task attempt files and log files are written
for 95% of them (90% completed, 5% broken with a stderr tail); 5% stay new.

``report`` is timed as a subprocess, interleaved with ``python -c pass``, twice:
before the first ``collect``, when it reads and merges the 9,500 attempt files
itself, and after it.  In its own process the script also times the steps of a
report against ``json.dumps`` of the same exported rows, the baseline of the run.

The page is then opened from file:// in headless Chromium, in a new browser
context each time, interleaved with two baseline pages: an empty page, and an
empty page that loads only plotly.min.js.  "Interactive" is the time from the
start of navigation until a click on the "#" header has sorted the table, the
click being sent as soon as the page marks its table ready.  A click that comes
later may wait for the longest task on the main thread (loading plotly.js or
drawing a plot), which is timed too.  Plots lower on the page are drawn only
when scrolled near, so they are timed separately.

Usage: ``python bench/report_speed.py [--trials N] [--repeats N] [--write-doc]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

from hpcsweep.collect import export_rows, load_view
from hpcsweep.planner import SubmitRequest, plan_submission, record_plan
from hpcsweep.report import write_report
from hpcsweep.store import Store, attempt_file_name
from hpcsweep.submission import ExecutorOptions

NAME = "big"
HPCSWEEP = str(Path(benchlib.PYTHON).parent / "hpcsweep")
PRIORS = [
    "--lr~loguniform(1e-5, 1.0)",
    "--layers~uniform(1, 8, discrete=True)",
    "--dropout~uniform(0, 0.5)",
    "--optimizer~choices(['sgd', 'adam', 'rmsprop'])",
]
CHROMIUM = os.environ.get("HPCSWEEP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPORT_BUDGET_S = 3.0
INTERACTIVE_BUDGET_S = 2.0


def build_experiment(root: Path, workdir: Path, count: int) -> dict[str, int]:
    """Record ``count`` trials with attempt and log files; return the expected counts by status."""
    script = workdir / "train.py"
    script.write_text("raise SystemExit('the benchmark never runs trials')\n")
    store = Store(root)
    request = SubmitRequest(
        name=NAME, command=[benchlib.PYTHON, str(script), *PRIORS], max_trials=count, seed=0,
        executor=ExecutorOptions(executor="local"), cwd=workdir,
    )
    plan = plan_submission(store, request)
    store.experiment_dir(NAME).mkdir(parents=True, exist_ok=True)
    with store.lock(NAME):
        record_plan(store, plan)

    attempts_dir = store.experiment_dir(NAME) / "attempts"
    rng = random.Random(0)
    start = time.time() - 86_400
    counts = {"completed": 0, "broken": 0, "new": 0}
    for trial in plan.new_trials:
        draw = rng.random()
        if draw < 0.90:
            status = "completed"
        elif draw < 0.95:
            status = "broken"
        else:
            status = "new"
        counts[status] += 1
        if status == "new":
            continue
        working_dir = Path(trial["working_dir"])
        working_dir.mkdir(parents=True)
        (working_dir / "stdout.log").write_text(f"epoch 1 of trial {trial['id']}\n")
        (working_dir / "stderr.log").write_text("" if status == "completed" else "Traceback: out of memory\n")
        objective = rng.lognormvariate(0, 1) if status == "completed" else None
        begin = start + 8 * trial["number"]
        key = f"{int(begin * 1e9)}-1"
        attempt = {
            "trial": trial["id"], "key": key, "status": status, "attempt": 1,
            "start_time": begin, "end_time": begin + rng.uniform(60, 600), "heartbeat_time": begin,
            "job_id": f"7000_{trial['number']}", "array_job_id": "7000", "array_task_id": str(trial["number"]),
            "host": "node001", "pid": 4242, "exit_code": 0 if status == "completed" else 1,
            "objective": objective,
            "results": {"objective": objective, "accuracy": 1 / (1 + objective)} if objective else None,
            "reason": None if objective else "script exited with code 1",
            "stderr_tail": None if objective else "Traceback (most recent call last):\nMemoryError",
        }
        # Plain writes, not atomic ones: nothing reads these files while they are written.
        (attempts_dir / attempt_file_name(trial["id"], key)).write_text(json.dumps(attempt))
    return counts


def time_steps(store: Store, output: Path) -> dict[str, float]:
    """Time the steps of one report in this process, and json.dumps of the same rows."""
    load_s, (experiment, trials) = benchlib.timed(load_view, store, NAME)
    rows = export_rows(experiment, trials)
    dumps_s, _ = benchlib.timed(json.dumps, rows)
    write_s, _ = benchlib.timed(write_report, experiment, trials, output, store.root,
                                store.experiment_dir(NAME), f"hpcsweep report -n {NAME}")
    return {"load_view_s": load_s, "write_report_s": write_s, "json_dumps_s": dumps_s}


# ----------------------------------------------------------------- browser


def write_baseline_pages(directory: Path, plotly_js: Path) -> tuple[Path, Path]:
    """Write an empty page and an empty page that loads only plotly.min.js."""
    blank = directory / "blank.html"
    blank.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>blank</title></head>"
                     "<body><p>blank</p></body></html>\n")
    plotly_only = directory / "plotly-only.html"
    plotly_only.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>plotly</title>"
                           f"<script defer src='{plotly_js.as_uri()}'></script></head>"
                           "<body><p>plotly only</p></body></html>\n")
    return blank, plotly_only


def load_time_s(browser: Any, page_path: Path) -> float:
    """Open ``page_path`` in a new context; return the time until its load event ended."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_path.as_uri(), wait_until="load")
        return float(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")) / 1000
    finally:
        context.close()


def report_times_s(browser: Any, index: Path) -> dict[str, float]:
    """Open the report in a new context; return its table, interactive, load and plot times."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    # Record every task that kept the main thread busy for more than 50 ms.
    context.add_init_script("""window.LONG_TASKS = [];
        new PerformanceObserver(list => { for (const entry of list.getEntries()) window.LONG_TASKS.push(
            [entry.startTime, entry.duration]); }).observe({type: 'longtask', buffered: true});""")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(index.as_uri(), wait_until="commit")
        page.wait_for_function("document.documentElement.dataset.table === 'ready'", timeout=60_000)
        page.click("th[data-key='number'] button")
        page.wait_for_function("document.querySelector(\"th[data-key='number']\").getAttribute('aria-sort') "
                               "=== 'ascending'", timeout=60_000)
        interactive_ms = page.evaluate("performance.now()")
        if page.text_content("#trial-table tbody tr td") != "0":
            raise SystemExit("sorting by # did not put trial 0 first")
        page.wait_for_function("document.getElementById('plot-time').dataset.state === 'drawn'", timeout=60_000)
        page.wait_for_function("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
        marks = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('mark')
            .map(mark => [mark.name, mark.startTime]))""")
        load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        long_tasks = page.evaluate("window.LONG_TASKS")

        # The plots below the table, each drawn when scrolled near.
        started_ms = page.evaluate("performance.now()")
        for container in page.query_selector_all("[data-plot]"):
            container.scroll_into_view_if_needed()
            page.wait_for_function("element => element.dataset.state === 'drawn'", arg=container, timeout=120_000)
        all_plots_ms = page.evaluate("performance.now()") - started_ms
        row_count = page.evaluate("document.querySelectorAll('#trial-table tbody tr').length")
    finally:
        context.close()
    if errors:
        raise SystemExit(f"the report page logged errors: {errors[:3]}")
    if row_count != 50:
        raise SystemExit(f"the table shows {row_count} rows, expected a page of 50")
    return {
        "table_ready_s": marks["hpcsweep:table-ready"] / 1000,
        "interactive_s": interactive_ms / 1000,
        "load_s": load_ms / 1000,
        "overview_plot_s": marks["hpcsweep:plot-drawn:plot-time"] / 1000,
        "longest_task_s": max((duration for _, duration in long_tasks), default=0.0) / 1000,
        "scroll_all_plots_s": all_plots_ms / 1000,
    }


def time_pages(index: Path, directory: Path, repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    blank, plotly_only = write_baseline_pages(directory, index.parent / "plotly.min.js")
    times: dict[str, list[float]] = {"blank_s": [], "plotly_only_s": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            report_times_s(browser, index)  # warm-up: the file cache, not the browser's caches
            for _ in range(repeats):
                times["blank_s"].append(load_time_s(browser, blank))
                times["plotly_only_s"].append(load_time_s(browser, plotly_only))
                for key, value in report_times_s(browser, index).items():
                    times.setdefault(key, []).append(value)
        finally:
            browser.close()
    return times


# -------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000, help="trials in the experiment (default 10000)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each measurement (default 5)")
    parser.add_argument("--write-doc", action="store_true", help="update BENCHMARKS.md")
    arguments = parser.parse_args()
    info = benchlib.describe_machine()

    with tempfile.TemporaryDirectory(prefix="hpcsweep-bench-") as name:
        workdir = Path(name)
        root = workdir / "runs"
        build_started = time.perf_counter()
        counts = build_experiment(root, workdir, arguments.trials)
        print(f"built {arguments.trials} trials {counts} in {time.perf_counter() - build_started:.1f} s")
        env = dict(os.environ, HPCSWEEP_ROOT=str(root))
        store = Store(root)
        output = store.experiment_dir(NAME) / "report"

        steps = time_steps(store, workdir / "steps")
        report_command = [HPCSWEEP, "report", "-n", NAME]
        before = benchlib.interleaved_wall_s(
            {"pass": [benchlib.PYTHON, "-c", "pass"], "report": report_command},
            arguments.repeats, env, workdir)
        benchlib.wall_s([HPCSWEEP, "collect", "-n", NAME], env, workdir)
        after = benchlib.interleaved_wall_s(
            {"pass": [benchlib.PYTHON, "-c", "pass"], "report": report_command},
            arguments.repeats, env, workdir)
        data_mb = (output / "data.js").stat().st_size / 1e6
        pages = time_pages(output / "index.html", workdir, arguments.repeats)

    median = {key: benchlib.median(values) for key, values in pages.items()}
    pass_before, pass_after = benchlib.median(before["pass"]), benchlib.median(after["pass"])
    report_before, report_after = benchlib.median(before["report"]), benchlib.median(after["report"])
    dumps_s = steps["json_dumps_s"]
    command_rows = [
        benchlib.table_row("`python -c pass` (baseline, first round)", pass_before, pass_before),
        benchlib.table_row(f"`hpcsweep report -n {NAME}`, before collect", report_before, pass_before,
                           f"≤ {REPORT_BUDGET_S:g} s"),
        benchlib.table_row("`python -c pass` (baseline, second round)", pass_after, pass_after),
        benchlib.table_row(f"`hpcsweep report -n {NAME}`, after collect", report_after, pass_after,
                           f"≤ {REPORT_BUDGET_S:g} s"),
    ]
    step_rows = [
        benchlib.table_row("`json.dumps` of the exported rows (baseline)", dumps_s, dumps_s),
        benchlib.table_row("`load_view` (merges the attempt files)", steps["load_view_s"], dumps_s),
        benchlib.table_row("`write_report` (data.js, index.html, assets)", steps["write_report_s"], dumps_s),
    ]
    blank_s = median["blank_s"]
    page_rows = [
        benchlib.table_row("empty page, load event (baseline)", blank_s, blank_s),
        benchlib.table_row("empty page with plotly.min.js only, load event", median["plotly_only_s"], blank_s),
        benchlib.table_row("report: table drawn", median["table_ready_s"], blank_s),
        benchlib.table_row("report: interactive (a sort click applied)", median["interactive_s"], blank_s,
                           f"≤ {INTERACTIVE_BUDGET_S:g} s"),
        benchlib.table_row("report: load event", median["load_s"], blank_s),
        benchlib.table_row("report: objective-over-time plot drawn", median["overview_plot_s"], blank_s),
        benchlib.table_row("report: longest main-thread task until then (worst input delay)",
                           median["longest_task_s"], blank_s),
        benchlib.table_row("report: scroll through and draw every plot", median["scroll_all_plots_s"], blank_s),
    ]
    header = ["measurement", "median wall time", "ratio to baseline", "target"]
    text = (
        f"Run: `python bench/report_speed.py --repeats {arguments.repeats}`, {benchlib.machine_line(info)}. "
        f"{arguments.trials:,} trials ({counts['completed']:,} completed, {counts['broken']:,} broken, "
        f"{counts['new']:,} new), four priors; data.js is {data_mb:.1f} MB. "
        f"Medians of {arguments.repeats} interleaved runs.\n\n"
        f"{benchlib.markdown_table(header, command_rows)}\n"
        f"Steps of one report, in process (one run):\n\n{benchlib.markdown_table(header, step_rows)}\n"
        f"The page in headless Chromium {_chromium_version()}, opened from file://, "
        f"times from the start of navigation:\n\n{benchlib.markdown_table(header, page_rows)}"
    )
    print(text)
    verdicts = {
        "report_within_budget": max(report_before, report_after) <= REPORT_BUDGET_S,
        "interactive_within_budget": median["interactive_s"] <= INTERACTIVE_BUDGET_S,
    }
    print("budgets: " + ", ".join(f"{key} {'yes' if value else 'NO'}" for key, value in verdicts.items()))

    benchlib.append_result("report_speed", info, {
        "trials": arguments.trials, "python_pass_s": [pass_before, pass_after],
        "report_before_collect_s": report_before, "report_after_collect_s": report_after,
        **steps, **median, "data_js_mb": data_mb, **verdicts,
    })
    if arguments.write_doc:
        benchlib.update_document("report_speed", text)


def _chromium_version() -> str:
    import subprocess

    try:
        output = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "(version unknown)"
    return output.strip().removeprefix("Chromium ").split(" ")[0]


if __name__ == "__main__":
    main()
