"""The array task on the local executor: environment, outcomes, throttling, signals."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import process_alive


def collect_json(cli, name: str) -> list[dict]:
    result = cli("collect", "-n", name, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def submit(cli, name: str, *args: str) -> None:
    result = cli("submit", "-n", name, "--executor", "local", "--wait", "--poll-s", "0.2", *args)
    assert result.exit_code == 0, result.stderr


ECHO_ENV = """
    import json, os, sys
    names = [k for k in os.environ if k.startswith(("HPCSWEEP_", "ORION_"))]
    json.dump({"env": {k: os.environ[k] for k in names}, "cwd": os.getcwd(), "argv": sys.argv},
              open("seen.json", "w"))
    from hpcsweep.client import report_objective
    report_objective(1.0)
"""


def test_environment_and_working_dir(cli, script, tmp_path: Path) -> None:
    path = script(ECHO_ENV)
    submit(cli, "env", "--max-trials", "1", "--", "python", str(path), "--x~uniform(0, 1)",
           "--out", "{trial.working_dir}/o", "--tag", "{exp.name}-{exp.version}-{trial.id}")
    [row] = collect_json(cli, "env")
    seen = json.loads((Path(row["working_dir"]) / "seen.json").read_text())
    env = seen["env"]

    assert seen["cwd"] == row["working_dir"]
    assert row["working_dir"] == str(cli.root / "env" / "trials" / row["id"])
    for suffix in ("EXPERIMENT_ID", "EXPERIMENT_NAME", "EXPERIMENT_VERSION", "TRIAL_ID",
                   "WORKING_DIR", "RESULTS_PATH", "INTERRUPT_CODE"):
        assert env[f"HPCSWEEP_{suffix}"] == env[f"ORION_{suffix}"]
    assert env["HPCSWEEP_TRIAL_ID"] == row["id"]
    assert env["HPCSWEEP_EXPERIMENT_NAME"] == "env"
    assert env["HPCSWEEP_INTERRUPT_CODE"] == "130"
    assert env["HPCSWEEP_ATTEMPT"] == "1"
    assert seen["argv"][1:3] == ["--x", repr(row["params"]["/x"])]
    assert seen["argv"][4] == f"{row['working_dir']}/o"
    assert seen["argv"][6] == f"env-1-{row['id']}"


OUTCOMES = """
    import json, math, os, sys
    mode = sys.argv[sys.argv.index("--mode") + 1]
    path = os.environ["ORION_RESULTS_PATH"]
    if mode == "ok":
        json.dump([{"name": "loss", "type": "objective", "value": 0.5},
                   {"name": "acc", "type": "statistic", "value": 0.9}], open(path, "w"))
    elif mode == "mapping":
        json.dump({"objective": 0.25, "accuracy": 0.97}, open(path, "w"))
    elif mode == "crash":
        print("Traceback: something went wrong", file=sys.stderr)
        sys.exit(3)
    elif mode == "interrupt":
        sys.exit(130)
    elif mode == "noresult":
        pass
    elif mode == "empty":
        open(path, "w").close()
    elif mode == "nan":
        open(path, "w").write('{"objective": NaN}')
    elif mode == "two":
        json.dump([{"name": "a", "type": "objective", "value": 1},
                   {"name": "b", "type": "objective", "value": 2}], open(path, "w"))
"""


def test_outcomes_by_exit_and_results(cli, script) -> None:
    path = script(OUTCOMES)
    modes = ["ok", "mapping", "crash", "interrupt", "noresult", "empty", "nan", "two"]
    submit(cli, "outcomes", "--max-trials", "8", "--algorithm", "grid", "--max-requeues", "0",
           "--parallelism", "4", "--", "python", str(path), f"--mode~choices({modes!r})")
    rows = {row["params"]["/mode"]: row for row in collect_json(cli, "outcomes")}

    assert rows["ok"]["status"] == "completed"
    assert rows["ok"]["objective"] == 0.5
    assert rows["ok"]["results"] == {"loss": 0.5, "acc": 0.9}
    assert rows["mapping"]["status"] == "completed"
    assert rows["mapping"]["results"]["accuracy"] == 0.97
    assert rows["crash"]["status"] == "broken"
    assert rows["crash"]["exit_code"] == 3
    assert "something went wrong" in rows["crash"]["stderr_tail"]
    assert rows["interrupt"]["status"] == "interrupted"
    assert rows["interrupt"]["exit_code"] == 130
    assert "--max-requeues" in rows["interrupt"]["reason"]
    for mode, words in [("noresult", "no results file"), ("empty", "empty"), ("nan", "finite"),
                        ("two", "exactly one")]:
        assert rows[mode]["status"] == "broken", mode
        assert rows[mode]["exit_code"] == 0
        assert words in rows[mode]["reason"], (mode, rows[mode]["reason"])


def test_collect_orders_best_first(cli, script) -> None:
    path = script("""
        import sys
        from hpcsweep.client import report_objective
        x = float(sys.argv[2])
        if x > 2.5:
            sys.exit(1)
        report_objective(x)
    """)
    submit(cli, "order", "--max-trials", "4", "--algorithm", "grid", "--", "python", str(path),
           "--x~choices([2, 0, 3, 1])")
    rows = collect_json(cli, "order")
    assert [row["objective"] for row in rows] == [0, 1, 2, None]
    assert rows[-1]["status"] == "broken"

    submit(cli, "order-max", "--maximize", "--max-trials", "4", "--algorithm", "grid", "--",
           "python", str(path), "--x~choices([2, 0, 3, 1])")
    assert [row["objective"] for row in collect_json(cli, "order-max")] == [2, 1, 0, None]


def test_parallelism_bounds_running_trials(cli, script) -> None:
    path = script("""
        import time
        from hpcsweep.client import report_objective
        time.sleep(0.6)
        report_objective(0.0)
    """)
    submit(cli, "throttle", "--max-trials", "6", "--parallelism", "2", "--", "python", str(path),
           "--x~uniform(0, 1)")
    rows = collect_json(cli, "throttle")
    assert all(row["status"] == "completed" for row in rows)
    events = sorted([(row["start_time"], 1) for row in rows] + [(row["end_time"], -1) for row in rows])
    running, peak = 0, 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2


RESUMABLE = """
    import json, os, signal, sys, time
    state = {"step": 0}
    if os.path.exists("ckpt.json"):
        state = json.load(open("ckpt.json"))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    while state["step"] < 40:
        time.sleep(0.1)
        state["step"] += 1
        if stop:
            json.dump(state, open("ckpt.json", "w"))
            sys.exit(130)
    open("attempts.txt", "a").write(os.environ["HPCSWEEP_ATTEMPT"] + "\\n")
    from hpcsweep.client import report_objective
    report_objective(state["step"])
"""


def test_time_limit_requeues_and_resumes(cli, script) -> None:
    path = script(RESUMABLE)
    # Limit 60 s, warning 58 s before: the script is signalled after about 2 s.
    submit(cli, "resume", "--max-trials", "1", "--time", "1", "--signal-delay-s", "58", "--grace-s", "5",
           "--", "python", str(path), "--x~uniform(0, 1)")
    [row] = collect_json(cli, "resume")
    assert row["status"] == "completed"
    assert row["attempts"] >= 2
    assert row["objective"] == 40  # the work was resumed, not redone
    assert (Path(row["working_dir"]) / "attempts.txt").read_text().split() == [str(row["attempts"])]


def test_requeue_limit_ends_interrupted(cli, script) -> None:
    path = script("import sys; sys.exit(130)")
    submit(cli, "limit", "--max-trials", "1", "--max-requeues", "2", "--", "python", str(path),
           "--x~uniform(0, 1)")
    [row] = collect_json(cli, "limit")
    assert row["status"] == "interrupted"
    assert row["attempts"] == 3
    assert "limit of 2 requeues was reached" in row["reason"]


STUBBORN = """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for _ in range(4):
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            open(f"child-{os.getpid()}", "w").close()
            time.sleep(600)
            os._exit(0)
    time.sleep(600)
"""


def test_grace_then_kill_whole_group(cli, script) -> None:
    path = script(STUBBORN)
    started = time.monotonic()
    submit(cli, "stubborn", "--max-trials", "1", "--time", "1", "--signal-delay-s", "58", "--grace-s", "1",
           "--max-requeues", "0", "--", "python", str(path), "--x~uniform(0, 1)")
    assert time.monotonic() - started < 30
    [row] = collect_json(cli, "stubborn")
    assert row["status"] == "interrupted"
    assert "killed after a grace of 1 s" in row["reason"]
    children = [int(p.name.split("-")[1]) for p in Path(row["working_dir"]).glob("child-*")]
    assert len(children) == 4
    assert not any(process_alive(pid) for pid in children)


def test_unknown_experiment_lists_known(cli, script) -> None:
    path = script(ECHO_ENV)
    submit(cli, "known", "--max-trials", "1", "--", "python", str(path))
    result = cli("collect", "-n", "nope")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "'nope' not found" in result.stderr
    assert "known experiments: known" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_collect_text_formats(cli, script, fmt: str) -> None:
    path = script("""
        import sys
        from hpcsweep.client import report_objective
        report_objective(float(sys.argv[2]))
    """)
    submit(cli, "fmt", "--max-trials", "3", "--algorithm", "grid", "--", "python", str(path),
           "--lr~choices([0.3, 0.1, 0.2])")
    result = cli("collect", "-n", "fmt", "--format", fmt)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    if fmt == "csv":
        assert lines[0].split(",")[:4] == ["id", "status", "objective", "/lr"]
        assert [line.split(",")[3] for line in lines[1:]] == ["0.1", "0.2", "0.3"]
    else:
        assert lines[0].split()[:4] == ["id", "status", "objective", "/lr"]
        assert len(lines) == 5


def test_status_json_counts(cli, script) -> None:
    path = script("import sys; sys.exit(int(sys.argv[2]))")
    submit(cli, "counts", "--max-trials", "2", "--algorithm", "grid", "--", "python", str(path),
           "--code~choices([0, 1])")
    result = cli("status", "-n", "counts", "--json")
    data = json.loads(result.stdout)
    assert data["total"] == 2
    assert data["counts"]["broken"] == 2  # exit 0 without a results file is broken too
    assert os.path.isdir(cli.root / "counts" / "attempts")
