"""Tests of ``hpcsweep report``: the files it writes, escaping, refresh and bad input.

The experiments are built without running trials: the planner records them and
each trial gets an attempt file as its array task would write it.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from hpcsweep.planner import SubmitRequest, plan_submission, record_plan
from hpcsweep.report import DATA_HEADER, plotly_js_path
from hpcsweep.report_data import DATA_VARIABLE, LogLinks, encode_for_script
from hpcsweep.report_server import ServedSite, bind_server
from hpcsweep.store import Store, attempt_file_name
from hpcsweep.submission import ExecutorOptions

HOSTILE = "<img src=x onerror=alert(1)>"
PRIORS = (
    "--lr~loguniform(1e-5, 1.0)",
    "--layers~uniform(1, 8, discrete=True)",
    f"--act~choices(['relu', 'tanh', '{HOSTILE}'])",
)
# The status of trial i is OUTCOMES[i % len(OUTCOMES)]; None leaves the trial new.
OUTCOMES: tuple[str | None, ...] = ("completed", "completed", "completed", "broken", "completed", None)


def make_experiment(
    root: Path,
    name: str,
    count: int = 12,
    priors: Sequence[str] = PRIORS,
    outcomes: Sequence[str | None] = OUTCOMES,
    seed: int = 1,
    new_version: bool = False,
) -> list[dict[str, Any]]:
    """Record an experiment of ``count`` trials and write an attempt file for each that ran.

    Objectives are distinct (a shuffled range), completed trials have results
    ``objective`` and ``accuracy``, and every trial that ran has a stdout.log and
    a stderr.log in its working directory.  Returns the trials, each with
    ``expected_status`` and ``expected_objective``.
    """
    store = Store(root)
    workdir = root.parent
    script = workdir / "train.py"
    if not script.exists():
        script.write_text("raise SystemExit('the report tests never run trials')\n")
    request = SubmitRequest(
        name=name, command=["python", str(script), *priors], max_trials=count, seed=seed,
        executor=ExecutorOptions(executor="local"), cwd=workdir, new_version=new_version,
    )
    plan = plan_submission(store, request)
    key = plan.experiment["key"]
    (store.root / key).mkdir(parents=True, exist_ok=True)
    with store.lock(key):
        record_plan(store, plan)

    objectives = [round(0.05 + index / count, 6) for index in range(count)]
    random.Random(seed).shuffle(objectives)
    start = time.time() - 3600
    trials = []
    for index, trial in enumerate(plan.new_trials):
        status = outcomes[index % len(outcomes)]
        objective = objectives[index] if status == "completed" else None
        if status is not None:
            write_attempt(store, key, trial, status, objective, start + 10 * index)
        trials.append(dict(trial, expected_status=status or "new", expected_objective=objective))
    return trials


def write_attempt(
    store: Store, name: str, trial: dict[str, Any], status: str, objective: float | None,
    start_time: float, stderr_tail: str | None = None,
) -> None:
    """Write an attempt file and the logs of ``trial`` as its array task would."""
    working_dir = Path(trial["working_dir"])
    working_dir.mkdir(parents=True, exist_ok=True)
    (working_dir / "stdout.log").write_text(f"trial {trial['id']} output\n")
    (working_dir / "stderr.log").write_text(stderr_tail or "")
    completed = status == "completed"
    key = f"{int(start_time * 1e9)}-1"
    attempt = {
        "trial": trial["id"], "key": key, "status": status, "attempt": 1,
        "start_time": start_time, "end_time": start_time + 5, "heartbeat_time": start_time + 5,
        "job_id": f"100_{trial['number']}", "array_job_id": "100", "array_task_id": str(trial["number"]),
        "host": "node1", "pid": 4242, "exit_code": 0 if completed else 1,
        "objective": objective,
        "results": {"objective": objective, "accuracy": 1 - objective} if completed and objective is not None
        else None,
        "reason": None if completed else "script exited with code 1",
        "stderr_tail": None if completed else (stderr_tail or "Traceback: boom"),
    }
    path = store.experiment_dir(name) / "attempts" / attempt_file_name(trial["id"], key)
    path.write_text(json.dumps(attempt))


def read_data(path: Path) -> dict[str, Any]:
    """Decode a data.js file back into its data."""
    text = path.read_text(encoding="utf-8")
    prefix = f"{DATA_HEADER}window.{DATA_VARIABLE} = JSON.parse("
    assert text.startswith(prefix)
    assert text.endswith(");\n")
    return json.loads(json.loads(text[len(prefix):-3]))  # type: ignore[no-any-return]


def report_dir(cli: Any, name: str) -> Path:
    return Path(cli.root) / name / "report"


# ---------------------------------------------------------------- layout


def test_report_writes_files(cli: Any) -> None:
    make_experiment(cli.root, "exp")
    result = cli("report", "-n", "exp")
    assert result.exit_code == 0, result.stderr
    folder = report_dir(cli, "exp")
    assert result.stdout == f"{folder / 'index.html'}\n"
    assert sorted(path.name for path in folder.iterdir()) == [
        "data.js", "index.html", "plotly.min.js", "report.css", "report.js",
    ]
    assert (folder / "plotly.min.js").read_bytes() == plotly_js_path().read_bytes()
    assert "12 trials" in result.stderr


def test_report_index_references_assets(cli: Any) -> None:
    make_experiment(cli.root, "exp")
    assert cli("report", "-n", "exp").exit_code == 0
    html = (report_dir(cli, "exp") / "index.html").read_text()
    for file_name in ("data.js", "report.js"):
        assert re.search(rf'<script defer src="{re.escape(file_name)}\?v=[0-9a-f]{{12}}"></script>', html)
    assert re.search(r'<link rel="stylesheet" href="report.css\?v=[0-9a-f]{12}">', html)
    assert re.search(r'<meta name="hpcsweep-plotly" content="plotly.min.js\?v=[0-9a-f]{12}">', html)
    assert html.index("data.js?v=") < html.index("report.js?v=")


def test_report_files_readable(cli: Any) -> None:
    make_experiment(cli.root, "exp")
    assert cli("report", "-n", "exp").exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    for path in report_dir(cli, "exp").iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_data_rows(cli: Any) -> None:
    trials = make_experiment(cli.root, "exp")
    assert cli("report", "-n", "exp").exit_code == 0
    data = read_data(report_dir(cli, "exp") / "data.js")
    assert data["format"] == 1
    assert data["experiment"] == {"name": "exp", "maximize": False}
    assert len(data["trials"]) == len(trials)
    by_id = {record["id"]: record for record in data["trials"]}
    for trial in trials:
        record = by_id[trial["id"]]
        assert record["status"] == trial["expected_status"]
        assert record["objective"] == trial["expected_objective"]
        assert record["params"] == trial["params"]
    objectives = [record["objective"] for record in data["trials"] if record["objective"] is not None]
    assert objectives == sorted(objectives)
    assert data["result_names"] == ["accuracy"]


def test_data_dimensions(cli: Any) -> None:
    make_experiment(cli.root, "exp", priors=(*PRIORS, "--size~uniform(1, 4, shape=2)"))
    assert cli("report", "-n", "exp").exit_code == 0
    dimensions = read_data(report_dir(cli, "exp") / "data.js")["dimensions"]
    assert [d["name"] for d in dimensions] == ["/lr", "/layers", "/act", "/size/0", "/size/1"]
    assert [d["log"] for d in dimensions] == [True, False, False, False, False]
    assert dimensions[2]["categorical"] is True
    assert dimensions[2]["options"] == ["relu", "tanh", HOSTILE]
    assert [d["index"] for d in dimensions[3:]] == [0, 1]


def test_report_overview(cli: Any) -> None:
    trials = make_experiment(cli.root, "exp")
    assert cli("report", "-n", "exp").exit_code == 0
    html = (report_dir(cli, "exp") / "index.html").read_text()
    best = min((t for t in trials if t["expected_objective"] is not None), key=lambda t: t["expected_objective"])
    assert f"<code>{best['id']}</code>" in html
    assert f'<dd id="best-objective">{best["expected_objective"]}</dd>' in html
    assert f"--lr {best['params']['/lr']!r}" in html
    assert '<td class="number" id="status-total">12</td>' in html
    assert '<td class="number" data-status="completed">8</td>' in html
    assert '<td class="number" data-status="broken">2</td>' in html
    assert '<td class="number" data-status="new">2</td>' in html
    assert "not inside a git repository" in html


def test_report_git_state(cli: Any, tmp_path: Path) -> None:
    import git

    repository = git.Repo.init(tmp_path)
    (tmp_path / "train.py").write_text("print('train')\n")
    repository.index.add(["train.py"])
    commit = repository.index.commit("Add the training script", author=git.Actor("a", "a@example.org"),
                                     committer=git.Actor("a", "a@example.org"))
    (tmp_path / "notes.txt").write_text("an untracked file makes the working tree dirty\n")
    make_experiment(cli.root, "exp")
    assert cli("report", "-n", "exp").exit_code == 0
    html = (report_dir(cli, "exp") / "index.html").read_text()
    assert f"commit <code>{commit.hexsha}</code> on {repository.active_branch.name}" in html
    assert '<strong class="dirty">dirty</strong>' in html


def test_report_no_completed_trial(cli: Any) -> None:
    make_experiment(cli.root, "exp", count=4, outcomes=("running", None))
    assert cli("report", "-n", "exp").exit_code == 0
    html = (report_dir(cli, "exp") / "index.html").read_text()
    assert "No trial has completed with an objective yet." in html
    data = read_data(report_dir(cli, "exp") / "data.js")
    assert [record["objective"] for record in data["trials"]] == [None] * 4


def test_report_reads_store_only(cli: Any) -> None:
    make_experiment(cli.root, "exp")
    experiment_dir = Path(cli.root) / "exp"
    before = {path: path.stat().st_mtime_ns for path in experiment_dir.rglob("*") if path.is_file()}
    assert cli("report", "-n", "exp").exit_code == 0
    after = {path: path.stat().st_mtime_ns for path in experiment_dir.rglob("*")
             if path.is_file() and "report" not in path.relative_to(experiment_dir).parts}
    assert after == before


# ------------------------------------------------------------------ links


def test_links_relative_by_default(cli: Any) -> None:
    make_experiment(cli.root, "exp")
    assert cli("report", "-n", "exp").exit_code == 0
    folder = report_dir(cli, "exp")
    records = read_data(folder / "data.js")["trials"]
    linked = [record for record in records if record["stdout"]]
    assert len(linked) == 10  # every trial that ran; the two new trials have no logs
    for record in linked:
        for key in ("stdout", "stderr"):
            assert record[key] == f"../trials/{record['id']}/{key}.log"
            assert (folder / unquote(record[key])).is_file()
    assert all(record["stdout"] is None for record in records if record["status"] == "new")


def test_links_quote_names(cli: Any) -> None:
    make_experiment(cli.root, "exp+1")
    output = Path(cli.root) / "reports" / "exp 1"
    assert cli("report", "-n", "exp+1", "--output", str(output)).exit_code == 0
    record = next(r for r in read_data(output / "data.js")["trials"] if r["stdout"])
    assert record["stdout"] == f"../../exp%2B1/trials/{record['id']}/stdout.log"
    assert (output / unquote(record["stdout"])).is_file()


def test_links_outside_root(cli: Any, tmp_path: Path) -> None:
    make_experiment(cli.root, "exp")
    assert cli("report", "-n", "exp", "--output", "elsewhere").exit_code == 0
    folder = tmp_path / "elsewhere"
    record = next(r for r in read_data(folder / "data.js")["trials"] if r["stdout"])
    assert record["stdout"].startswith("file:///")
    assert Path(unquote(urlparse(record["stdout"]).path)).is_file()


def test_links_follow_moved_store(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    trials = make_experiment(root, "exp")
    moved = tmp_path / "copy of runs"
    root.rename(moved)
    links = LogLinks(moved / "exp" / "report", moved, moved / "exp")
    assert links.working_dir(trials[0]) == moved / "exp" / "trials" / trials[0]["id"]
    assert links.log_links(trials[0]) == {
        "stdout": f"../trials/{trials[0]['id']}/stdout.log",
        "stderr": f"../trials/{trials[0]['id']}/stderr.log",
    }


# --------------------------------------------------------------- escaping


def test_encode_for_script() -> None:
    text = encode_for_script({"a": "</script><!--&\u2028\u2029", "b": [float("nan"), 1.5]})
    for character in "<>&\u2028\u2029":
        assert character not in text
    assert json.loads(text) == {"a": "</script><!--&\u2028\u2029", "b": [None, 1.5]}


def test_data_js_escaped(cli: Any) -> None:
    store = Store(cli.root)
    trials = make_experiment(cli.root, "exp", count=3, outcomes=(None,))
    tail = "Traceback </script><script>alert(1)</script> & \u2028 line \u2029 end"
    write_attempt(store, "exp", trials[0], "broken", None, time.time() - 60, stderr_tail=tail)
    assert cli("report", "-n", "exp").exit_code == 0
    path = report_dir(cli, "exp") / "data.js"
    body = path.read_text(encoding="utf-8")[len(DATA_HEADER):]
    for character in "<>&\u2028\u2029":
        assert character not in body
    records = read_data(path)["trials"]
    assert next(r for r in records if r["id"] == trials[0]["id"])["stderr_tail"] == tail
    assert {r["params"]["/act"] for r in records} <= {"relu", "tanh", HOSTILE}


def test_index_html_escaped(cli: Any) -> None:
    make_experiment(cli.root, "exp", count=6, outcomes=("completed",),
                    priors=(f"--act~choices(['{HOSTILE}'])",))
    assert cli("report", "-n", "exp").exit_code == 0
    html = (report_dir(cli, "exp") / "index.html").read_text()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script") == 2


# -------------------------------------------------------------- refresh


def test_report_refresh(cli: Any) -> None:
    store = Store(cli.root)
    trials = make_experiment(cli.root, "exp", count=4, outcomes=("completed", None))
    assert cli("report", "-n", "exp").exit_code == 0
    folder = report_dir(cli, "exp")
    plotly_mtime_ns = (folder / "plotly.min.js").stat().st_mtime_ns
    first_html = (folder / "index.html").read_text()

    write_attempt(store, "exp", trials[1], "completed", 0.01, time.time() - 30)
    assert cli("report", "-n", "exp").exit_code == 0
    records = read_data(folder / "data.js")["trials"]
    assert records[0]["id"] == trials[1]["id"]
    assert records[0]["objective"] == 0.01
    second_html = (folder / "index.html").read_text()
    assert re.search(r"data\.js\?v=(\w+)", first_html)[1] != re.search(r"data\.js\?v=(\w+)", second_html)[1]  # type: ignore[index]
    # An unchanged asset is not rewritten, and no temporary file is left behind.
    assert (folder / "plotly.min.js").stat().st_mtime_ns == plotly_mtime_ns
    assert sorted(path.name for path in folder.iterdir()) == [
        "data.js", "index.html", "plotly.min.js", "report.css", "report.js",
    ]


def test_report_into_empty_folder(cli: Any, tmp_path: Path) -> None:
    make_experiment(cli.root, "exp", count=2)
    (tmp_path / "empty").mkdir()
    assert cli("report", "-n", "exp", "--output", "empty").exit_code == 0
    assert (tmp_path / "empty" / "index.html").is_file()


# ------------------------------------------------------------- bad input


def test_report_unknown_experiment(cli: Any) -> None:
    make_experiment(cli.root, "exp", count=2)
    result = cli("report", "-n", "nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: experiment 'nope' not found")
    assert "known experiments: exp" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (Path(cli.root) / "nope").exists()


def test_report_output_is_file(cli: Any, tmp_path: Path) -> None:
    make_experiment(cli.root, "exp", count=2)
    (tmp_path / "taken").write_text("a file")
    result = cli("report", "-n", "exp", "--output", "taken")
    assert result.exit_code == 2
    assert result.stderr == f"Error: report folder {tmp_path / 'taken'} is a file; give a folder path with --output DIR\n"


def test_report_output_under_file(cli: Any, tmp_path: Path) -> None:
    make_experiment(cli.root, "exp", count=2)
    (tmp_path / "taken").write_text("a file")
    result = cli("report", "-n", "exp", "--output", "taken/report")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: cannot create the report folder {tmp_path / 'taken' / 'report'}: "
                             f"Not a directory; choose a writable folder with --output DIR\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_report_output_read_only(cli: Any, tmp_path: Path) -> None:
    make_experiment(cli.root, "exp", count=2)
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    result = cli("report", "-n", "exp", "--output", "locked")
    assert result.exit_code == 2
    assert result.stderr == f"Error: report folder {folder} is not writable; choose a writable folder with --output DIR\n"


def test_report_output_foreign_folder(cli: Any, tmp_path: Path) -> None:
    make_experiment(cli.root, "exp", count=2)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "index.html").write_text("my notes")
    (tmp_path / "notes" / "todo.txt").write_text("my notes")
    result = cli("report", "-n", "exp", "--output", "notes")
    assert result.exit_code == 2
    assert "already contains other files (todo.txt) and no report" in result.stderr
    assert result.stderr.count("\n") == 1
    assert (tmp_path / "notes" / "index.html").read_text() == "my notes"


def test_report_port_in_use(cli: Any) -> None:
    make_experiment(cli.root, "exp", count=2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("report", "-n", "exp", "--serve", "--port", str(port))
    assert result.exit_code == 2
    assert result.stderr == f"Error: port {port} on 127.0.0.1 is in use; choose another with --port N\n"
    assert not report_dir(cli, "exp").exists()


def test_report_port_invalid(cli: Any) -> None:
    make_experiment(cli.root, "exp", count=2)
    result = cli("report", "-n", "exp", "--serve", "--port", "70000")
    assert result.exit_code == 2
    assert "--port 70000" in result.stderr


# ---------------------------------------------------------------- serving


def test_report_serve(cli: Any, tmp_path: Path) -> None:
    trials = make_experiment(cli.root, "exp", count=3)
    command = [sys.executable, "-c", "import sys; from hpcsweep.cli import main; sys.exit(main())",
               "report", "-n", "exp", "--serve", "--port", "0"]
    environment = dict(os.environ, HPCSWEEP_ROOT=str(cli.root))
    process = subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        # The HTTP root is the experiment's folder, which contains both report/ and trials/.
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/report/", url), url
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Cache-Control"] == "no-cache"
            assert "hpcsweep report" in response.read().decode()
        with urllib.request.urlopen(url + "data.js", timeout=10) as response:
            assert response.read().decode().startswith(DATA_HEADER)
        # The report's relative log links work over HTTP too.
        log_url = urllib.parse.urljoin(url, f"../trials/{trials[0]['id']}/stdout.log")
        with urllib.request.urlopen(log_url, timeout=10) as response:
            assert response.read().decode() == f"trial {trials[0]['id']} output\n"
        # The rest of the store is not served.
        base = url.removesuffix("report/")
        for path in ("", "trials.json", "experiment.json", "attempts/", f"trials/{trials[0]['id']}/"):
            with pytest.raises(urllib.error.HTTPError) as rejected:
                urllib.request.urlopen(base + path, timeout=10)
            rejected.value.close()
            assert rejected.value.code == 404, path
        port = int(url.split(":")[2].split("/")[0])
        if Path("/proc/net/tcp").exists():
            assert _listening_addresses(port) == {"127.0.0.1"}
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "stopped serving the report" in stderr


def _listening_addresses(port: int) -> set[str]:
    """Return the IPv4 addresses that listen on ``port``, read from Linux's /proc/net/tcp."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A is TCP_LISTEN
            addresses.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


def test_bind_server_loopback(tmp_path: Path) -> None:
    server = bind_server(ServedSite(tmp_path, tmp_path, tmp_path / "trials"), 0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_served_site_outside_root(tmp_path: Path) -> None:
    site = ServedSite.for_report(tmp_path / "out", tmp_path / "runs", tmp_path / "runs" / "exp" / "trials")
    assert site.root_dir == tmp_path / "out"
    assert site.url_path() == "/"
    assert site.serves(tmp_path / "out" / "index.html")
    assert not site.serves(tmp_path / "runs" / "exp" / "trials.json")


def test_links_file_uri_quoted(tmp_path: Path) -> None:
    root = tmp_path / "runs #1 ünïcode"
    trials = make_experiment(root, "exp", count=2, outcomes=("completed",))
    links = LogLinks(tmp_path / "out", root, root / "exp")
    expected = (root / "exp" / "trials" / trials[0]["id"] / "stdout.log").as_uri()
    assert links.log_links(trials[0])["stdout"] == expected
    assert "%20%231%20" in expected


def test_report_latest_version(cli: Any) -> None:
    make_experiment(cli.root, "exp", count=2)
    trials = make_experiment(cli.root, "exp", count=3, priors=("--lr~uniform(0, 1)",), new_version=True)
    result = cli("report", "-n", "exp")
    assert result.exit_code == 0, result.stderr
    folder = Path(cli.root) / "exp@v2" / "report"
    assert result.stdout == f"{folder / 'index.html'}\n"
    records = read_data(folder / "data.js")["trials"]
    assert sorted(r["id"] for r in records) == sorted(t["id"] for t in trials)
    assert all(r["stdout"] is None or r["stdout"].startswith("../trials/") for r in records)
    assert "(version 2," in (folder / "index.html").read_text()
