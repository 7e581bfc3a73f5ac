"""The user's command line: which tokens are priors, and how a trial's command is written.

Only a token of the form ``--name~expression`` (or ``-x~expression``) is a prior.
Every other token passes to the script exactly as typed, with two exceptions that
must survive the move into the trial's working directory.  A relative path to the
program, and the script file of an interpreter such as ``python``, are made
absolute at submission.  The value of the configuration option (``--config`` by
default) is replaced, in each trial, by the path of that trial's copy of the
template.

:meth:`CommandLine.to_json` saves the parsed command as plain JSON, and
:meth:`CommandLine.from_json` rebuilds a parser that renders exactly the same
commands and configuration files, without reading the original files again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcsweep.errors import UsageError
from hpcsweep.prior_syntax import parse_prior
from hpcsweep.priors import Choices, Prior, Value
from hpcsweep.space import Space
from hpcsweep.template import Template, load_template

logger = logging.getLogger(__name__)

STATE_FORMAT = 1

# ``--name~expr``; a ``~`` followed by ``/`` is a home-directory path, not a prior.
PRIOR_TOKEN = re.compile(r"^(?P<option>--?[^\s=~-][^\s=~]*)~(?!/)(?P<expression>.*)$", re.DOTALL)
# A prior detached from its option (``--lr ~uniform(0, 1)`` or ``--lr=~uniform(0, 1)``)
# is passed to the script as text, which is almost never what the user meant.
_DETACHED_PRIOR = re.compile(r"(^|=)~\s*(uniform|loguniform|normal|choices|fidelity)\(")

RENDER_MODES = ("auto", "value", "equals", "switch", "tokens", "json", "comma")
"""How a sampled value reaches the script.

``auto``: ``switch`` for a choice between booleans, ``tokens`` for a list, else ``value``.
``value``: two tokens, ``--lr 0.01``.  ``equals``: one token, ``--lr=0.01``.
``switch``: ``--amp`` when true, nothing when false.  ``tokens``: ``--size 4 8``.
``json``: ``--size [4, 8]`` as one token.  ``comma``: ``--size 4,8``.
"""

PLACEHOLDERS = (
    "{trial.id}", "{trial.working_dir}", "{exp.name}", "{exp.version}", "{exp.working_dir}",
)

_INTERPRETER = re.compile(r"^(python[0-9.]*|pypy[0-9.]*|bash|sh|zsh|dash|Rscript|julia|perl|ruby|node)$")
_PYTHON = re.compile(r"^(python|pypy)[0-9.]*$")
_SHELL = re.compile(r"^(bash|sh|zsh|dash)$")
# Interpreter options that take a value in the next token, before the script.
_PYTHON_VALUE_OPTIONS = {"-W", "-X", "--check-hash-based-pycs"}
_SHELL_VALUE_OPTIONS = {"-o", "-O", "+o", "+O"}
# Options after which the command runs code from the command line or stdin, not a script file.
_SHELL_NO_SCRIPT = {"-c", "-s", "-"}
_OTHER_NO_SCRIPT = {"-e", "-E", "--eval", "-p", "--print", "-"}


def format_scalar(value: Value) -> str:
    """Write one value as a command-line token; a float reads back to the same number."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return str(value)
    return json.dumps(value)


@dataclass(frozen=True)
class PriorToken:
    option: str
    name: str
    expression: str


@dataclass(frozen=True)
class ConfigToken:
    option: str
    joined: bool  # True for --config=PATH, False for --config PATH


Token = str | PriorToken | ConfigToken


class CommandLine:
    """A parsed command: fixed tokens, priors, and an optional configuration template."""

    def __init__(
        self,
        tokens: list[Token],
        template: Template | None = None,
        render_modes: dict[str, str] | None = None,
    ) -> None:
        self.tokens = tokens
        self.template = template
        self.render_modes = dict(render_modes or {})
        self.space = self._build_space()

        for name, mode in self.render_modes.items():
            if name not in self.space:
                raise UsageError(
                    f"--render {name}={mode}: {name!r} is not a parameter; "
                    f"parameters are {', '.join(self.space) or '(none)'}"
                )
            if mode not in RENDER_MODES:
                raise UsageError(
                    f"--render {name}={mode}: unknown mode; valid modes are {', '.join(RENDER_MODES)}"
                )
            prior = self.space[name]
            if mode == "switch" and not (isinstance(prior, Choices) and prior.is_boolean):
                raise UsageError(
                    f"--render {name}=switch: {name} ~ {prior.expression()} is not a choice between "
                    f"True and False, so it cannot be a switch; use value or equals"
                )

    # ------------------------------------------------------------------ parsing

    @classmethod
    def parse(
        cls,
        argv: list[str],
        config_option: str = "--config",
        render_modes: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> CommandLine:
        """Parse the user's command; raise :class:`UsageError` on any invalid part."""
        if not argv:
            raise UsageError("no command given; write it after '--', as in: hpcsweep submit -- python train.py")
        cwd = cwd or Path.cwd()
        tokens: list[Token] = [_resolve_program(argv[0], cwd)]
        template: Template | None = None
        script_checked = not _INTERPRETER.match(Path(argv[0]).name)

        index = 1
        while index < len(argv):
            text = argv[index]
            match = PRIOR_TOKEN.match(text)
            if match:
                option, expression = match["option"], match["expression"]
                name = "/" + option.lstrip("-")
                parse_prior(expression, option)  # raise now, naming the option
                tokens.append(PriorToken(option, name, expression))
            elif template is None and (text == config_option or text.startswith(config_option + "=")):
                joined = text != config_option
                if joined:
                    path_text = text[len(config_option) + 1:]
                else:
                    if index + 1 >= len(argv):
                        raise UsageError(f"{config_option} needs a file path after it")
                    index += 1
                    path_text = argv[index]
                template = load_template(_absolute(path_text, cwd), config_option)
                tokens.append(ConfigToken(config_option, joined))
            elif text == config_option or text.startswith(config_option + "="):
                raise UsageError(
                    f"{config_option} is given twice; hpcsweep fills one template per trial, so pass "
                    f"the other file with another option or merge the two"
                )
            elif not script_checked and _runs_no_script(argv[0], text):
                tokens.append(text)
                script_checked = True
            elif not script_checked and _takes_value(argv[0], text) and index + 1 < len(argv):
                tokens.extend([text, argv[index + 1]])
                index += 1
            elif not script_checked and not text.startswith("-"):
                tokens.append(_resolve_script(argv[0], text, cwd))
                script_checked = True
            else:
                if _DETACHED_PRIOR.search(text):
                    logger.warning(
                        "%r is passed to the script as text, not read as a prior; write the prior "
                        "joined to its option, as --lr~'loguniform(1e-5, 1)'", text,
                    )
                tokens.append(text)
            index += 1
        return cls(tokens, template, render_modes)

    def _build_space(self) -> Space:
        priors: dict[str, Prior] = {}
        for token in self.tokens:
            if isinstance(token, PriorToken):
                if token.name in priors:
                    raise UsageError(
                        f"parameter {token.name} is defined twice on the command line; keep one {token.option}~..."
                    )
                priors[token.name] = parse_prior(token.expression, token.option)
        if self.template is not None:
            for name, prior in self.template.priors().items():
                if name in priors:
                    raise UsageError(
                        f"parameter {name} is defined both on the command line and in the template "
                        f"{self.template.filename}; remove one of them"
                    )
                priors[name] = prior
        return Space(priors)

    # ---------------------------------------------------------------- rendering

    def render_mode(self, name: str) -> str:
        mode = self.render_modes.get(name, "auto")
        if mode != "auto":
            return mode
        prior = self.space[name]
        if isinstance(prior, Choices) and prior.is_boolean:
            return "switch"
        return "tokens" if prior.shape is not None or _has_list_option(prior) else "value"

    def render(
        self,
        params: dict[str, Value],
        placeholders: dict[str, str] | None = None,
        config_path: str | None = None,
    ) -> list[str]:
        """Return the trial's argv.

        ``placeholders`` maps ``{trial.id}`` and the other names of
        :data:`PLACEHOLDERS` to their values; ``config_path`` is where the trial's
        copy of the template is written.
        """
        argv: list[str] = []
        for token in self.tokens:
            if isinstance(token, str):
                argv.append(_substitute(token, placeholders or {}))
            elif isinstance(token, PriorToken):
                argv.extend(self._render_prior(token, params[token.name]))
            else:
                path = config_path if config_path is not None else self.template_filename()
                if token.joined:
                    argv.append(f"{token.option}={path}")
                else:
                    argv.extend([token.option, path])
        return argv

    def _render_prior(self, token: PriorToken, value: Value) -> list[str]:
        mode = self.render_mode(token.name)
        if mode == "switch":
            return [token.option] if value else []
        if mode == "equals":
            return [f"{token.option}={_one_token(value)}"]
        if mode == "json":
            return [token.option, json.dumps(value)]
        if mode == "comma":
            items = value if isinstance(value, list) else [value]
            return [token.option, ",".join(format_scalar(item) for item in items)]
        if mode == "tokens" and isinstance(value, list):
            return [token.option, *(format_scalar(item) for item in value)]
        return [token.option, _one_token(value)]

    def template_filename(self) -> str:
        return self.template.filename if self.template else ""

    def render_config(self, params: dict[str, Value]) -> str | None:
        """Return the text of the trial's configuration file, or None without a template."""
        if self.template is None:
            return None
        return self.template.render(params)

    # ------------------------------------------------------------------- state

    def to_json(self) -> dict[str, Any]:
        tokens: list[dict[str, Any]] = []
        for token in self.tokens:
            if isinstance(token, str):
                tokens.append({"kind": "fixed", "text": token})
            elif isinstance(token, PriorToken):
                tokens.append({"kind": "prior", "option": token.option, "name": token.name,
                               "expression": token.expression})
            else:
                tokens.append({"kind": "config", "option": token.option, "joined": token.joined})
        return {
            "format": STATE_FORMAT,
            "tokens": tokens,
            "template": self.template.to_json() if self.template else None,
            "render_modes": self.render_modes,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> CommandLine:
        if state.get("format") != STATE_FORMAT:
            raise UsageError(
                f"saved parser state has format {state.get('format')!r}, this hpcsweep reads "
                f"{STATE_FORMAT}; run the array tasks with the hpcsweep that submitted them"
            )
        tokens: list[Token] = []
        for item in state["tokens"]:
            if item["kind"] == "fixed":
                tokens.append(item["text"])
            elif item["kind"] == "prior":
                tokens.append(PriorToken(item["option"], item["name"], item["expression"]))
            else:
                tokens.append(ConfigToken(item["option"], item["joined"]))
        template = Template.from_json(state["template"]) if state.get("template") else None
        return cls(tokens, template, state.get("render_modes"))

    @property
    def program(self) -> str:
        first = self.tokens[0]
        return first if isinstance(first, str) else ""

    def script_path(self) -> str | None:
        """Return the script file of an interpreter command, or the program itself."""
        if not _INTERPRETER.match(Path(self.program).name):
            return self.program
        for token in self.tokens[1:]:
            if isinstance(token, str) and os.path.isabs(token) and os.path.isfile(token):
                return token
        return None


def _runs_no_script(program: str, option: str) -> bool:
    """Return True if ``option`` makes the interpreter ``program`` run no script file."""
    name = Path(program).name
    if _PYTHON.match(name):
        # python -m module, python -c code, also written joined: -mhttp.server
        return option == "-" or option.startswith(("-m", "-c"))
    if _SHELL.match(name):
        return option in _SHELL_NO_SCRIPT
    return option in _OTHER_NO_SCRIPT


def _takes_value(program: str, option: str) -> bool:
    name = Path(program).name
    if _PYTHON.match(name):
        return option in _PYTHON_VALUE_OPTIONS
    if _SHELL.match(name):
        return option in _SHELL_VALUE_OPTIONS
    return False


def _has_list_option(prior: Prior) -> bool:
    return isinstance(prior, Choices) and any(isinstance(option, list) for option in prior.options)


def _one_token(value: Value) -> str:
    if isinstance(value, list):
        return json.dumps(value)
    return format_scalar(value)


def _substitute(text: str, placeholders: dict[str, str]) -> str:
    if "{" not in text:
        return text
    for key, value in placeholders.items():
        text = text.replace(key, value)
    return text


def _absolute(path_text: str, cwd: Path) -> Path:
    path = Path(os.path.expanduser(path_text))
    return path if path.is_absolute() else cwd / path


def _resolve_program(program: str, cwd: Path) -> str:
    if "/" in program:
        path = _absolute(program, cwd)
        if not path.is_file():
            raise UsageError(f"program {program!r} not found; check the path")
        if not os.access(path, os.X_OK):
            raise UsageError(f"program {program!r} is not executable; run: chmod +x {program}")
        return str(path)
    if shutil.which(program) is None:
        raise UsageError(
            f"program {program!r} not found on PATH; give its full path or load its module first"
        )
    return program


def _resolve_script(program: str, script: str, cwd: Path) -> str:
    if "{" in script:
        return script  # a placeholder is filled per trial
    path = _absolute(script, cwd)
    if not path.is_file():
        raise UsageError(
            f"script {script!r} not found (looked for {path}); {Path(program).name} "
            f"would fail in every trial, so check the path"
        )
    return str(path)
