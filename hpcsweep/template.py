"""Configuration templates: YAML or JSON files whose values may be priors.

A value written ``'hpcsweep~loguniform(1e-5, 1)'`` (or ``'orion~...'``) anywhere in
nested mappings and lists becomes a dimension named by its path, such as
``/training/lr0`` or ``/layers/1/width``.  Each trial gets a copy of the file with
the sampled values.  A YAML copy is made by replacing only the text of each prior
in the original, so comments, key order, quoting and the types of untouched values
survive.  A JSON copy is written again from the parsed document, in its key order.

A :class:`Template` is plain data (:meth:`Template.to_json`), so the array task can
rebuild it after the original file is gone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpcsweep.errors import PriorError, TemplateError
from hpcsweep.prior_syntax import parse_prior
from hpcsweep.priors import Prior, Value

PRIOR_MARKERS = ("hpcsweep~", "orion~")
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)


@dataclass(frozen=True)
class Slot:
    """A prior in the template: its parameter name, its expression and, in YAML, its text span."""

    name: str
    expression: str
    start: int = -1
    end: int = -1


@dataclass(frozen=True)
class Template:
    """A parsed configuration template."""

    filename: str
    format: str  # "yaml" or "json"
    text: str
    slots: tuple[Slot, ...]

    @property
    def suffix(self) -> str:
        return Path(self.filename).suffix

    def priors(self) -> dict[str, Prior]:
        return {slot.name: parse_prior(slot.expression, slot.name) for slot in self.slots}

    def render(self, values: dict[str, Value]) -> str:
        """Return the text of the template with every prior replaced by its value in ``values``."""
        if self.format == "json":
            return _render_json(self.text, self.slots, values)
        return _render_yaml(self.text, self.slots, values)

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "format": self.format,
            "text": self.text,
            "slots": [
                {"name": s.name, "expression": s.expression, "start": s.start, "end": s.end}
                for s in self.slots
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Template:
        slots = tuple(Slot(**slot) for slot in data["slots"])
        return cls(data["filename"], data["format"], data["text"], slots)


def load_template(path: Path, option: str) -> Template:
    """Read and parse the template at ``path``, given on the command line after ``option``."""
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        file_format = "yaml"
    elif suffix in JSON_SUFFIXES:
        file_format = "json"
    else:
        raise TemplateError(
            f"{option} {path}: the template must be YAML (.yaml, .yml) or JSON (.json), "
            f"not {suffix or 'a file without extension'!r}; rename it, or set --config-option to another "
            f"option so that hpcsweep passes this one through"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"{option} {path}: file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TemplateError(f"{option} {path}: cannot read the file ({err})") from err

    if file_format == "json":
        slots = _find_json_slots(text, path, option)
    else:
        slots = _find_yaml_slots(text, path, option)
    template = Template(path.name, file_format, text, tuple(slots))
    try:
        template.priors()  # raise now on a malformed prior, naming the file and the key
    except PriorError as err:
        raise TemplateError(f"{option} {path}: {err}") from None
    return template


def _expression(value: object) -> str | None:
    if isinstance(value, str):
        for marker in PRIOR_MARKERS:
            if value.startswith(marker):
                return value[len(marker):]
    return None


def _segment(key: object, path: Path, where: str) -> str:
    text = str(key)
    if "/" in text:
        raise TemplateError(
            f"{path}: key {text!r} under {where or '/'} contains '/', which parameter paths "
            f"use as separator; rename the key"
        )
    return text


# --------------------------------------------------------------------------- YAML


def _find_yaml_slots(text: str, path: Path, option: str) -> list[Slot]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        yaml.safe_load(text)  # compose accepts some documents that safe_load cannot build
    except yaml.YAMLError as err:
        raise TemplateError(f"{option} {path}: invalid YAML ({_yaml_problem(err)}); fix the file") from err

    slots: list[Slot] = []
    names_by_node: dict[int, str] = {}

    def walk(node: yaml.Node | None, name: str) -> None:
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                key = _segment(key_node.value, path, name)
                if key in keys:
                    # PyYAML keeps the last value silently; a prior there would be ignored.
                    raise TemplateError(
                        f"{option} {path}: key {name}/{key} appears twice (line "
                        f"{key_node.start_mark.line + 1}); keep one of them"
                    )
                keys.add(key)
                walk(value_node, f"{name}/{key}")
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{name}/{index}")
        elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            expression = _expression(node.value)
            if expression is None:
                return
            if node.style in ("|", ">"):
                raise TemplateError(
                    f"{option} {path}: the prior at {name or '/'} is a block scalar ({node.style}); "
                    f"write it on one line in quotes, as 'orion~{expression.strip()}'"
                )
            # An alias or merge key reaches the same node again, but the copy can
            # replace its text only once.
            if id(node) in names_by_node:
                raise TemplateError(
                    f"{option} {path}: the prior at {names_by_node[id(node)]} is reused at {name or '/'} "
                    f"through a YAML alias; write the prior out at each place"
                )
            names_by_node[id(node)] = name
            slots.append(Slot(name, expression, node.start_mark.index, node.end_mark.index))

    walk(root, "")
    _check_slot_names(slots, path, option)
    return slots


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0] or type(err).__name__
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)


def _check_slot_names(slots: list[Slot], path: Path, option: str) -> None:
    seen: set[str] = set()
    for slot in slots:
        if slot.name == "":
            raise TemplateError(
                f"{option} {path}: the whole document is a prior; a template must be a mapping "
                f"or a list with priors as its values"
            )
        if slot.name in seen:
            raise TemplateError(f"{option} {path}: key {slot.name} appears twice; keep one of them")
        seen.add(slot.name)


def yaml_literal(value: Value) -> str:
    """Write ``value`` as a YAML flow literal that PyYAML reads back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        # PyYAML (YAML 1.1) reads 1e-05 as a string: its floats need a dot.
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{exponent}" if exponent else mantissa
    if isinstance(value, str):
        # PyYAML's emitter escapes the characters that YAML forbids in a document.
        return yaml.safe_dump(value, default_style='"', width=math.inf, allow_unicode=True).rstrip("\n")
    if isinstance(value, list):
        return "[" + ", ".join(yaml_literal(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} into a YAML template")


def _render_yaml(text: str, slots: tuple[Slot, ...], values: dict[str, Value]) -> str:
    pieces: list[str] = []
    position = 0
    for slot in sorted(slots, key=lambda s: s.start):
        pieces.append(text[position:slot.start])
        pieces.append(yaml_literal(values[slot.name]))
        position = slot.end
    pieces.append(text[position:])
    return "".join(pieces)


# --------------------------------------------------------------------------- JSON


def _find_json_slots(text: str, path: Path, option: str) -> list[Slot]:
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        raise TemplateError(f"{option} {path}: invalid JSON ({err}); fix the file") from err
    except _DuplicateKeyError as err:
        raise TemplateError(f"{option} {path}: key {err.args[0]!r} appears twice in one object; "
                            f"keep one of them") from None

    slots: list[Slot] = []

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{name}/{_segment(key, path, name)}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{name}/{index}")
        else:
            expression = _expression(node)
            if expression is not None:
                slots.append(Slot(name, expression))

    walk(document, "")
    _check_slot_names(slots, path, option)
    return slots


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKeyError(key)
        document[key] = value
    return document


def _render_json(text: str, slots: tuple[Slot, ...], values: dict[str, Value]) -> str:
    document = json.loads(text)
    for slot in slots:
        keys = slot.name.split("/")[1:]
        parent = document
        for key in keys[:-1]:
            parent = parent[int(key)] if isinstance(parent, list) else parent[key]
        last = keys[-1]
        if isinstance(parent, list):
            parent[int(last)] = values[slot.name]
        else:
            parent[last] = values[slot.name]
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
