"""Descriptions of experiments: ``hpcsweep info`` and the tree of ``hpcsweep list``."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from hpcsweep.collect import best_trial, load_view
from hpcsweep.space import Space
from hpcsweep.errors import StoreError
from hpcsweep.store import Store
from hpcsweep.trials import count_statuses
from hpcsweep.versioning import describe_vcs

logger = logging.getLogger(__name__)


def format_time(value: float | None) -> str:
    if not value:
        return ""
    return datetime.datetime.fromtimestamp(value).isoformat(sep=" ", timespec="seconds")


def describe_experiment(store: Store, key: str) -> dict[str, Any]:
    """Return the metadata, setup, counts and best trial of the experiment stored under ``key``."""
    experiment, trials = load_view(store, key)
    best = best_trial(experiment, trials)
    base = experiment["name"]
    return {
        "key": experiment.get("key", base), "name": base, "id": experiment["id"],
        "version": experiment["version"],
        "versions": [version for version, _ in store.versions(base)],
        "parent": experiment.get("parent"),
        "children": [child for child in _children(store) if child["parent"] == experiment.get("key", base)],
        "user": experiment["user"], "hpcsweep_version": experiment["hpcsweep_version"],
        "submit_time": experiment["submit_time"], "command": experiment["command_line"],
        "submit_dir": experiment["submit_dir"], "script": experiment.get("script"),
        "vcs": experiment.get("vcs"), "snapshot": experiment.get("snapshot"),
        "space": experiment["space"], "algorithm": experiment["algorithm"],
        "max_trials": experiment["max_trials"], "maximize": experiment.get("maximize", False),
        "executor": experiment["executor"], "settings": experiment["settings"],
        "counts": count_statuses(trials), "total": len(trials),
        "code_changed_trials": [trial["id"] for trial in trials if trial.get("code_changed")],
        "best": None if best is None else {
            "id": best["id"], "objective": best["objective"], "params": best["params"],
            "working_dir": best["working_dir"],
        },
    }


def format_info(info: dict[str, Any]) -> str:
    versions = ", ".join(str(v) for v in info["versions"]) or str(info["version"])
    lines = [
        f"experiment  {info['name']} version {info['version']} (versions: {versions}; id {info['id']})",
    ]
    if info["parent"]:
        parent = info["parent"]
        lines.append(f"parent      {parent['name']} version {parent['version']}")
    if info["children"]:
        lines.append(f"branches    {', '.join(child['key'] for child in info['children'])}")
    lines += [
        f"user        {info['user']}, hpcsweep {info['hpcsweep_version']}",
        f"submitted   {format_time(info['submit_time'])} from {info['submit_dir']}",
        f"command     {info['command']}",
    ]
    vcs = info["vcs"] or {}
    if vcs.get("type") == "git":
        branch = vcs["branch"] or "detached HEAD"
        dirty = f", uncommitted changes {vcs['diff_sha256'][:12]}" if vcs["dirty"] else ""
        commit = vcs["commit"] or "no commit yet"
        lines.append(f"git         {commit} on {branch}{dirty} in {vcs['root']}")
    else:
        lines.append("git         the script is not in a git repository")
    if info["snapshot"]:
        snapshot = info["snapshot"]
        lines.append(f"snapshot    {snapshot['files']} files, {snapshot['size_bytes'] / 1e6:.1f} MB in {snapshot['dir']}")
    lines.append("space")
    for name, prior in Space.from_json(info["space"]).items():
        lines.append(f"  {name} ~ {prior.expression()}")
    lines.append(f"algorithm   {json.dumps(info['algorithm'])}, max trials {info['max_trials']}, "
                 f"{'maximize' if info['maximize'] else 'minimize'}")
    executor = {k: v for k, v in info["executor"].items() if v not in (None, [], {})}
    lines.append(f"executor    {json.dumps(executor)}")
    counts = ", ".join(f"{count} {status}" for status, count in info["counts"].items() if count)
    lines.append(f"trials      {info['total']}: {counts or 'none'}")
    if info["code_changed_trials"]:
        lines.append(f"code        {len(info['code_changed_trials'])} trials ran with code changed since "
                     f"submission ({describe_vcs(vcs)}): {', '.join(info['code_changed_trials'])}")
    best = info["best"]
    if best:
        lines.append(f"best        {best['id']}: {best['objective']!r} with {json.dumps(best['params'])}")
    else:
        lines.append("best        no completed trial yet")
    return "\n".join(lines) + "\n"


def _children(store: Store) -> list[dict[str, Any]]:
    children = []
    for key in store.list_experiments():
        parent = store.load_experiment(key).get("parent")
        if parent:
            children.append({"key": key, "parent": parent["key"]})
    return children


def experiment_tree(store: Store) -> list[str]:
    """Return one line per experiment, each version and branch indented under its parent."""
    experiments = {}
    for key in store.list_experiments():
        try:
            experiments[key] = store.load_experiment(key)
        except StoreError as err:
            logger.warning("skipping %s: %s", key, err)
    children: dict[str | None, list[str]] = {}
    for key, experiment in experiments.items():
        parent = (experiment.get("parent") or {}).get("key")
        children.setdefault(parent if parent in experiments else None, []).append(key)

    lines: list[str] = []

    def visit(key: str, depth: int) -> None:
        experiment = experiments[key]
        try:
            count = str(len(store.load_saved_trials(key, summary=True)[0]))
        except StoreError:
            count = "unreadable"
        lines.append(f"{'  ' * depth}{key}  version {experiment['version']}, {count} trials, "
                     f"submitted {format_time(experiment['submit_time'])}: {experiment['command_line']}")
        for child in sorted(children.get(key, [])):
            visit(child, depth + 1)

    for root_key in sorted(children.get(None, [])):
        visit(root_key, 0)
    return lines
