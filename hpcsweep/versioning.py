"""Experiment versions: continue an experiment, or branch it when its setup changed.

Submitting again under an existing name continues the experiment when its command
line, template, search space, algorithm, objective direction and code are all the
same.  Any difference is rejected with the list of differences, unless the user asks
for ``--new-version`` (version N + 1 of the same name, with separate trials) or
``--branch NEW_NAME`` (a new experiment whose parent is the old one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpcsweep.algorithms import Algorithm
from hpcsweep.cmdline import CommandLine
from hpcsweep.errors import UsageError
from hpcsweep.store import Store, check_experiment_name, experiment_key


@dataclass(frozen=True)
class Target:
    """The destination of a submission: a new experiment or version, or an existing one to continue."""

    key: str
    name: str
    version: int
    existing: dict[str, Any] | None  # the experiment continued; None for a new one
    parent: dict[str, Any] | None  # key, name and version of the experiment branched from


def describe_vcs(vcs: dict[str, Any] | None) -> str:
    if not vcs or vcs.get("type") != "git":
        return "no git repository"
    changes = " with uncommitted changes" if vcs.get("dirty") else ""
    if not vcs.get("commit"):
        return f"a repository without commits{changes}"
    return f"commit {vcs['commit'][:12]}{changes}"


def code_differs(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Return True if two version-control states describe different code."""
    before, after = before or {}, after or {}
    return (before.get("type"), before.get("commit"), before.get("diff_sha256")) != (
        after.get("type"), after.get("commit"), after.get("diff_sha256"))


def differences(
    experiment: dict[str, Any], command: CommandLine, algorithm: Algorithm, maximize: bool,
    vcs: dict[str, Any] | None,
) -> list[str]:
    """Return what differs between ``experiment`` and a new submission, in words."""
    found = []
    if experiment["space"] != command.space.to_json():
        found.append("the search space")
    if experiment["parser_state"] != command.to_json():
        found.append("the command line or its configuration template")
    if experiment["algorithm"] != algorithm.to_json():
        found.append(f"the algorithm ({experiment['algorithm']} before, {algorithm.to_json()} now)")
    if experiment.get("maximize", False) != maximize:
        found.append("the objective direction (--maximize)")
    if not experiment.get("snapshot") and code_differs(experiment.get("vcs"), vcs):
        found.append(f"the code ({describe_vcs(experiment.get('vcs'))} before, {describe_vcs(vcs)} now)")
    return found


def choose_target(
    store: Store, name: str, new_version: bool, branch: str | None,
    changes: list[str], existing: dict[str, Any] | None,
) -> Target:
    """Decide where a submission of experiment ``name`` goes; raise :class:`UsageError` if nowhere."""
    if new_version and branch:
        raise UsageError("--new-version and --branch exclude each other; choose one")
    if branch is not None:
        check_experiment_name(branch)
        if existing is None:
            raise UsageError(f"--branch {branch}: experiment {name!r} does not exist, so there is nothing to "
                             f"branch from; submit it without --branch")
        if store.versions(branch):
            raise UsageError(f"--branch {branch}: an experiment of that name exists; choose another name")
        return Target(branch, branch, 1, None, _link(existing))
    if new_version:
        if existing is None:
            raise UsageError(f"--new-version: experiment {name!r} does not exist; "
                             f"drop --new-version to create it")
        version = existing["version"] + 1
        return Target(experiment_key(name, version), name, version, None, _link(existing))
    if existing is not None and changes:
        raise UsageError(
            f"experiment {name!r} exists with a different setup: {'; '.join(changes)} changed; "
            f"use --new-version to start version {existing['version'] + 1}, or --branch NEW_NAME"
        )
    if existing is not None:
        return Target(existing["key"], name, existing["version"], existing, existing.get("parent"))
    return Target(name, name, 1, None, None)


def _link(experiment: dict[str, Any]) -> dict[str, Any]:
    return {"key": experiment["key"], "name": experiment["name"], "version": experiment["version"]}
