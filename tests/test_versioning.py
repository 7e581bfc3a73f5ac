"""Experiment metadata and versions, with real git repositories made in temporary folders."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from hpcsweep.vcs import read_vcs_state

ACTOR = git.Actor("Tester", "tester@example.org")

SCRIPT = """
import sys
from hpcsweep.client import report_objective
VERSION = 1
open("version.txt", "w").write(str(VERSION))
report_objective(float(sys.argv[2]))
"""


def make_repo(path: Path, script: str = SCRIPT) -> git.Repo:
    path.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(path)
    (path / "train.py").write_text(script)
    (path / ".gitignore").write_text("hpcsweep-runs/\n")
    repo.index.add(["train.py", ".gitignore"])
    repo.index.commit("Add the training script", author=ACTOR, committer=ACTOR)
    return repo


def commit_change(repo: git.Repo, text: str) -> str:
    path = Path(repo.working_tree_dir) / "train.py"
    path.write_text(path.read_text().replace("VERSION = 1", text))
    repo.index.add(["train.py"])
    return repo.index.commit("Change the script", author=ACTOR, committer=ACTOR).hexsha


def submit(cli, name: str, script: Path, *options: str, prior: str = "--x~uniform(0, 1)", wait: bool = True):
    args = ["submit", "-n", name, "--executor", "local", "--max-trials", "2", "--seed", "3", *options]
    if wait:
        args += ["--wait", "--poll-s", "0.2"]
    return cli(*args, "--", "python", str(script), prior)


def info(cli, name: str) -> dict:
    result = cli("info", "-n", name, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def collect(cli, name: str) -> list[dict]:
    result = cli("collect", "-n", name, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_clean_checkout_metadata(cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    assert submit(cli, "clean", tmp_path / "repo" / "train.py").exit_code == 0
    data = info(cli, "clean")
    assert data["vcs"]["type"] == "git"
    assert data["vcs"]["commit"] == repo.head.commit.hexsha
    assert data["vcs"]["branch"] == repo.active_branch.name
    assert data["vcs"]["dirty"] is False
    assert data["vcs"]["diff_sha256"] is None
    assert data["script"] == str(tmp_path / "repo" / "train.py")
    assert data["user"]
    assert data["hpcsweep_version"]
    assert data["command"].startswith("python ")
    assert all(row["code_changed"] is False for row in collect(cli, "clean"))


def test_dirty_checkout_hashes_changes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    clean = read_vcs_state(tmp_path / "repo" / "train.py")
    (tmp_path / "repo" / "notes.txt").write_text("untracked\n")
    untracked = read_vcs_state(tmp_path / "repo" / "train.py")
    (tmp_path / "repo" / "train.py").write_text(SCRIPT + "# edited\n")
    edited = read_vcs_state(tmp_path / "repo" / "train.py")
    (tmp_path / "repo" / "ignored.log").write_text("x")
    (tmp_path / "repo" / ".gitignore").write_text("hpcsweep-runs/\n*.log\n")
    assert clean["dirty"] is False
    assert untracked["dirty"] is True
    assert edited["dirty"] is True
    assert len({untracked["diff_sha256"], edited["diff_sha256"]}) == 2
    assert untracked["commit"] == edited["commit"] == repo.head.commit.hexsha


def test_detached_head_and_no_repository(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    first = repo.head.commit.hexsha
    commit_change(repo, "VERSION = 2")
    repo.git.checkout(first)
    state = read_vcs_state(tmp_path / "repo" / "train.py")
    assert state["detached"] is True
    assert state["branch"] is None
    assert state["commit"] == first

    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "train.py").write_text(SCRIPT)
    state = read_vcs_state(outside / "train.py")
    assert state["type"] is None
    assert "not inside a git repository" in state["reason"]


def test_script_outside_repository_runs(cli, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "train.py").write_text(SCRIPT)
    assert submit(cli, "plain", tmp_path / "plain" / "train.py").exit_code == 0
    assert info(cli, "plain")["vcs"]["type"] is None
    assert {row["status"] for row in collect(cli, "plain")} == {"completed"}
    text = cli("info", "-n", "plain").stdout
    assert "not in a git repository" in text


@pytest.mark.parametrize("mode", ["warn", "fail", "ignore"])
def test_commit_between_submit_and_start(cli, tmp_path: Path, mode: str) -> None:
    repo = make_repo(tmp_path / "repo")
    before = repo.head.commit.hexsha
    script = tmp_path / "repo" / "train.py"
    # Submit without running: the planner records, then the code changes, then trials start.
    from hpcsweep.consumer import run_array_task
    from hpcsweep.errors import TrialFailedError
    from hpcsweep.planner import SubmitRequest, plan_submission, record_plan
    from hpcsweep.store import Store

    store = Store(cli.root)
    request = SubmitRequest(name="moved", command=["python", str(script), "--x~uniform(0, 1)"], max_trials=1,
                            seed=1, code_change=mode, cwd=tmp_path)
    plan = plan_submission(store, request)
    (cli.root / "moved").mkdir(parents=True)
    with store.lock("moved"):
        batch = record_plan(store, plan)
    after = commit_change(repo, "VERSION = 2")

    if mode == "fail":
        with pytest.raises(TrialFailedError):
            run_array_task(str(cli.root / "moved"), batch["id"], 0)
    else:
        run_array_task(str(cli.root / "moved"), batch["id"], 0)
    [row] = collect(cli, "moved")
    if mode == "fail":
        assert row["status"] == "broken"
        assert before[:12] in row["reason"]
        assert after[:12] in row["reason"]
        assert not (Path(row["working_dir"]) / "version.txt").exists()
    else:
        assert row["status"] == "completed"
        assert (Path(row["working_dir"]) / "version.txt").read_text() == "2"
    assert row["code_changed"] is (None if mode == "ignore" else True)
    text = cli("info", "-n", "moved").stdout
    if mode != "ignore":
        assert "1 trials ran with code changed since submission" in text


def test_snapshot_runs_submitted_code(cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (tmp_path / "repo" / "train.py").write_text(SCRIPT.replace("VERSION = 1", "VERSION = 'uncommitted'"))
    script = tmp_path / "repo" / "train.py"
    result = submit(cli, "snap", script, "--snapshot-code", wait=False)
    assert result.exit_code == 0, result.stderr
    assert "code snapshot: 2 files" in result.stderr
    commit_change(repo, "VERSION = 'later'")
    assert cli("submit", "-n", "snap", "--pending-only").exit_code == 0  # nothing pending: a no-op
    from hpcsweep.store import Store

    store = Store(cli.root)
    import time

    deadline = time.monotonic() + 30
    while any(t["status"] in ("new", "running") for t in store.load_trials("snap", 60)[0]):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    rows = collect(cli, "snap")
    assert {row["status"] for row in rows} == {"completed"}
    for row in rows:
        assert (Path(row["working_dir"]) / "version.txt").read_text() == "uncommitted"
    assert (cli.root / "snap" / "code" / "train.py").is_file()
    assert info(cli, "snap")["snapshot"]["files"] == 2


def test_snapshot_limit(cli, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    result = submit(cli, "big", tmp_path / "repo" / "train.py", "--snapshot-code", "--snapshot-limit-mb", "0.0001")
    assert result.exit_code == 2
    assert "--snapshot-limit-mb 0.0001" in result.stderr
    assert not (cli.root / "big").exists()


def test_resubmit_identical_continues(cli, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "train.py"
    assert submit(cli, "again", script).exit_code == 0
    first = {row["id"] for row in collect(cli, "again")}
    result = cli("submit", "-n", "again", "--executor", "local", "--max-trials", "5", "--seed", "3", "--wait",
                 "--poll-s", "0.2", "--", "python", str(script), "--x~uniform(0, 1)")
    assert result.exit_code == 0, result.stderr
    assert "trials: 3" in result.stdout
    rows = collect(cli, "again")
    assert len(rows) == 5
    assert first <= {row["id"] for row in rows}
    assert all(row["attempts"] == 1 for row in rows)  # trials already done were not rerun
    same = submit(cli, "again", script)
    assert same.exit_code == 0
    assert "nothing to submit" in same.stderr


def test_resubmit_changed_space_needs_version(cli, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "train.py"
    assert submit(cli, "change", script).exit_code == 0
    refused = submit(cli, "change", script, prior="--x~uniform(0, 2)")
    assert refused.exit_code == 2
    assert "the search space" in refused.stderr
    assert "--new-version" in refused.stderr
    assert refused.stderr.count("\n") == 1

    bumped = submit(cli, "change", script, "--new-version", prior="--x~uniform(0, 2)")
    assert bumped.exit_code == 0, bumped.stderr
    assert "experiment: change@v2" in bumped.stdout
    data = info(cli, "change")
    assert data["version"] == 2
    assert data["versions"] == [1, 2]
    assert data["parent"]["version"] == 1
    old_ids = {row["id"] for row in collect(cli, "change@v1")}
    new_ids = {row["id"] for row in collect(cli, "change")}
    assert old_ids.isdisjoint(new_ids)
    assert len(new_ids) == 2

    branched = submit(cli, "change", script, "--branch", "change-b", prior="--x~uniform(0, 3)")
    assert branched.exit_code == 0, branched.stderr
    assert info(cli, "change-b")["parent"]["key"] == "change@v2"
    listed = cli("list")
    assert listed.exit_code == 0, listed.stderr
    tree = listed.stdout.splitlines()
    assert tree[0].startswith("change ")
    assert tree[1].startswith("  change@v2 ")
    assert tree[2].startswith("    change-b ")


def test_resubmit_changed_code_refused(cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "train.py"
    assert submit(cli, "code", script).exit_code == 0
    commit_change(repo, "VERSION = 3")
    result = submit(cli, "code", script, "--max-trials", "4")
    assert result.exit_code == 2
    assert "the code (commit" in result.stderr


def test_insert_then_pending_only(cli, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "train.py"
    assert submit(cli, "ins", script, prior="--x~uniform(0, 1)").exit_code == 0
    added = cli("insert", "-n", "ins", "--x", "0.125")
    assert added.exit_code == 0, added.stderr
    trial_id = added.stdout.strip()
    rows = {row["id"]: row for row in collect(cli, "ins")}
    assert rows[trial_id]["status"] == "new"
    assert rows[trial_id]["params"] == {"/x": 0.125}
    ran = cli("submit", "-n", "ins", "--pending-only", "--wait", "--poll-s", "0.2")
    assert ran.exit_code == 0, ran.stderr
    rows = {row["id"]: row for row in collect(cli, "ins")}
    assert rows[trial_id]["status"] == "completed"
    assert rows[trial_id]["objective"] == 0.125


def test_versioning_bad_input(cli, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "train.py"
    assert submit(cli, "base", script).exit_code == 0
    assert submit(cli, "other", script).exit_code == 0
    before = sorted(p.name for p in cli.root.iterdir())
    cases = [
        (["submit", "-n", "base", "--code-change", "maybe", "--", "python", str(script)], "--code-change"),
        (["submit", "-n", "base", "--branch", "other", "--executor", "local", "--seed", "3", "--max-trials", "2",
          "--", "python", str(script), "--x~uniform(0, 1)"], "--branch other: an experiment of that name exists"),
        (["submit", "-n", "missing", "--new-version", "--executor", "local", "--", "python", str(script)],
         "--new-version: experiment 'missing' does not exist"),
        (["insert", "-n", "base", "--y", "1"], "parameter '/y' is not in the search space"),
        (["insert", "-n", "base", "--x", "7"], "value 7 of /x is outside its prior uniform(0, 1)"),
        (["insert", "-n", "base", "--x"], "--x has no value"),
        (["insert", "-n", "nope", "--x", "0.5"], "'nope' not found"),
    ]
    for args, words in cases:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
    assert sorted(p.name for p in cli.root.iterdir()) == before
    assert len(collect(cli, "base")) == 2


def test_store_inside_repository_is_not_a_change(cli, tmp_path: Path) -> None:
    # The store root (tmp_path/runs) lies inside the repository and is not ignored by git.
    repo = git.Repo.init(tmp_path)
    (tmp_path / "train.py").write_text(SCRIPT)
    repo.index.add(["train.py"])
    repo.index.commit("Add the training script", author=ACTOR, committer=ACTOR)
    assert submit(cli, "inside", tmp_path / "train.py").exit_code == 0
    rows = collect(cli, "inside")
    assert [row["code_changed"] for row in rows] == [False, False]
    assert info(cli, "inside")["vcs"]["dirty"] is False
    again = submit(cli, "inside", tmp_path / "train.py", "--max-trials", "3")
    assert again.exit_code == 0, again.stderr
    assert len(collect(cli, "inside")) == 3


def test_insert_integral_float_becomes_integer(cli, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "train.py"
    result = cli("submit", "-n", "ints", "--executor", "local", "--max-trials", "1", "--seed", "3", "--wait",
                 "--poll-s", "0.2", "--", "python", str(script), "--x~uniform(1, 9, discrete=True)")
    assert result.exit_code == 0, result.stderr
    existing = collect(cli, "ints")[0]["params"]["/x"]
    added = cli("insert", "-n", "ints", "--x", f"{existing}.0")
    assert added.exit_code == 2
    assert "already has these values" in added.stderr
    other = 1 if existing != 1 else 2
    added = cli("insert", "-n", "ints", "--x", f"{other}.0")
    assert added.exit_code == 0, added.stderr
    rows = {row["id"]: row for row in collect(cli, "ints")}
    assert rows[added.stdout.strip()]["params"] == {"/x": other}


def test_version_one_named_explicitly(cli, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    script = tmp_path / "repo" / "train.py"
    assert submit(cli, "two", script).exit_code == 0
    assert submit(cli, "two", script, "--new-version", prior="--x~uniform(0, 2)").exit_code == 0
    added = cli("insert", "-n", "two@v1", "--x", "0.5")
    assert added.exit_code == 0, added.stderr
    assert "hpcsweep submit -n two@v1 --pending-only" in added.stderr
    assert len(collect(cli, "two@v1")) == 3
    assert len(collect(cli, "two")) == 2


def test_unlock_refuses_live_holder(cli, tmp_path: Path) -> None:
    import os
    import socket
    import time as clock

    make_repo(tmp_path / "repo")
    assert submit(cli, "held", tmp_path / "repo" / "train.py").exit_code == 0
    lock = cli.root / "held" / "writer.lock"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": clock.time()}))
    refused = cli("unlock", "-n", "held")
    assert refused.exit_code == 2
    assert "alive on this host" in refused.stderr
    assert lock.exists()
    forced = cli("unlock", "-n", "held", "--force")
    assert forced.exit_code == 0
    assert not lock.exists()


def test_store_at_repository_root(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = git.Repo.init(tmp_path)
    (tmp_path / "train.py").write_text(SCRIPT)
    repo.index.add(["train.py"])
    repo.index.commit("Add the training script", author=ACTOR, committer=ACTOR)
    monkeypatch.setenv("HPCSWEEP_ROOT", str(tmp_path))
    result = cli("submit", "-n", "rooted", "--executor", "local", "--max-trials", "2", "--seed", "3",
                 "--code-change", "fail", "--wait", "--poll-s", "0.2", "--", "python", str(tmp_path / "train.py"),
                 "--x~uniform(0, 1)")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(cli("collect", "-n", "rooted", "--format", "json").stdout)
    assert [row["status"] for row in rows] == ["completed", "completed"]
