"""Spec files: a workspace or a change set written as JSON or YAML.

The contract (keep it exactly; extend only):

    {"components": [{"name": "...", "schema": "AWS::EC2::VPC", "properties": {...}},
                    {"name": "...", "delete": true}]}

The format is described by a JSON Schema, portal/spec.schema.json (docs/spec.md).

Extensions:
- per component `"replace": true`: delete and recreate the resource (with or without
  properties; a component that only sets `replace` may omit schema and properties);
- top level `"workspace": {"name", "slug", "region", "approvals_required"}` for
  workspace spec files;
- top level `"change_set": {"name", "problem", "solution"}`, the text an engineer
  writes for a change set;
- top level `"pipelines": [...]`, reserved: accepted and kept as raw data.

A change-set spec upserts: a listed component is added or has its properties replaced
whole, `"delete": true` deletes it, unlisted components stay as they are. Applying a
spec is the change-set engine's business; this module only parses, validates and dumps.

This module needs no database and no Django setup.
"""

from __future__ import annotations

import copy
import datetime
import difflib
import json
import math
import pathlib
import re
from dataclasses import dataclass, field
from importlib import resources

import yaml
from jsonschema import Draft202012Validator, validators

from . import inputs, pointers, subscriptions
from .errors import ValidationError
from .subscriptions import shape_error

SPEC_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass
class ComponentSpec:
    name: str
    schema: str | None = None
    properties: dict | None = None
    delete: bool = False
    replace: bool = False


@dataclass
class Spec:
    components: list[ComponentSpec]
    workspace: dict | None = None
    change_set: dict | None = None
    pipelines: list = field(default_factory=list)

    def component(self, name):
        """The component called `name`, or None."""
        return next((c for c in self.components if c.name == name), None)


# --- Loading ----------------------------------------------------------------------------


def load_spec(source: str | pathlib.Path) -> Spec:
    """Load a spec from a path (.json, .yaml, .yml) or from the text itself.

    A str is taken as a path when it is one line that ends in a spec suffix or names an
    existing file; anything else is spec text, JSON or YAML (detected).
    """
    if isinstance(source, pathlib.Path) or _looks_like_path(source):
        path = pathlib.Path(source)
        origin = str(path)
        if path.suffix.lower() not in SPEC_SUFFIXES:
            raise ValidationError(f"{origin}: a spec file must end in .json, .yaml or .yml")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValidationError(f"{origin}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{origin}: cannot read the file: {exc}") from None
        fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    elif isinstance(source, str):
        text, origin, fmt = source, "spec", None
    else:
        raise TypeError(f"load_spec() takes a path or spec text, not {type(source).__name__}")
    data = _parse_text(text, origin, fmt)
    if fmt is None and isinstance(data, str) and "\n" not in text.strip():
        raise ValidationError(
            f'{origin}: a spec must be an object with a "components" list, not a string; '
            f"if {text.strip()!r} is a file name, the file must exist and end in .json, .yaml or .yml"
        )
    # The line map takes longer than the rest of the load: it is made only for a message.
    return parse_spec(data, origin, _lines=lambda: _line_map(text))


def _looks_like_path(source):
    """One line that ends in a spec suffix, or names an existing file."""
    if not isinstance(source, str):
        return False
    line = source.strip()
    if not line or "\n" in line or line.startswith(("{", "[")):
        return False
    if line.lower().endswith(SPEC_SUFFIXES):
        return True
    try:
        return pathlib.Path(line).is_file()
    except (OSError, ValueError):
        return False


def _parse_text(text, origin, fmt):
    """JSON or YAML text -> data. `fmt` None means: detect."""
    if fmt is None:
        fmt = "json" if text.lstrip().startswith(("{", "[")) else "yaml"
        if fmt == "json":
            try:
                return _load_json(text, origin)
            except json.JSONDecodeError as json_exc:
                # A YAML flow mapping also starts with "{": accept it when it is one.
                try:
                    return _load_yaml(text, origin)
                except (yaml.YAMLError, _DuplicateKey):
                    raise _json_error(origin, json_exc) from None
            except _DuplicateKey as exc:
                raise ValidationError(f"{origin}: {exc}") from None
    if fmt == "json":
        try:
            return _load_json(text, origin)
        except json.JSONDecodeError as exc:
            raise _json_error(origin, exc) from None
        except _DuplicateKey as exc:
            raise ValidationError(f"{origin}: {exc}") from None
    try:
        return _load_yaml(text, origin)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "cannot parse"
        raise ValidationError(f"{origin}: invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{origin}: invalid YAML: {exc}") from None
    except _DuplicateKey as exc:
        raise ValidationError(f"{origin}: {exc}") from None


class _DuplicateKey(Exception):
    pass


def _load_json(text, origin):
    inputs.check_json_text(text, origin)

    def pairs(items):
        out = {}
        for key, value in items:
            if key in out:
                raise _DuplicateKey(f'duplicate key "{key}": the second one would silently win')
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=pairs)


def _load_yaml(text, origin):
    # Count the nesting on the parser's events first (composing recurses), then compose
    # (no object is constructed) to catch duplicate keys, which YAML loaders silently
    # resolve to the last one; then build the data with safe_load.
    inputs.check_yaml_events(yaml.parse(text, Loader=yaml.SafeLoader), origin)
    _check_yaml_duplicates(yaml.compose(text, Loader=yaml.SafeLoader))
    return yaml.safe_load(text)


def _check_yaml_duplicates(node):
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<":
                if key in seen:
                    raise _DuplicateKey(
                        f'duplicate key "{key}" at line {key_node.start_mark.line + 1} '
                        f"(first at line {seen[key]}): the second one would silently win"
                    )
                seen[key] = key_node.start_mark.line + 1
            _check_yaml_duplicates(value_node)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_yaml_duplicates(item)


def _json_error(origin, exc):
    return ValidationError(f"{origin}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")


def _line_map(text):
    """JSON pointer -> 1-based line of that node, for messages; {} when unknown."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines = {}

    def walk(node, pointer):
        if node is None:
            return
        lines[pointer] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    walk(value_node, pointers.child(pointer, key_node.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{pointer}/{index}")

    walk(root, "")
    return lines


# --- Validation -------------------------------------------------------------------------
#
# The format is portal/spec.schema.json (docs/spec.schema.json is the same file). Its
# errorMessage annotations carry the words; this code fills them in, orders the problems
# the way a reader goes through the file, and adds what a JSON Schema cannot say: unique
# names, YAML values that are not JSON, and the shape of subscriptions.

SCHEMA = json.loads(resources.files("portal").joinpath("spec.schema.json").read_text(encoding="utf-8"))
TOP_KEYS = tuple(SCHEMA["properties"])
COMPONENT_KEYS = tuple(SCHEMA["$defs"]["component"]["properties"])
WORKSPACE_KEYS = tuple(SCHEMA["$defs"]["workspace"]["properties"])
CHANGE_SET_KEYS = tuple(SCHEMA["$defs"]["change_set"]["properties"])
_KNOWN_KEYS = {"workspace": WORKSPACE_KEYS, "change_set": CHANGE_SET_KEYS, "components": COMPONENT_KEYS}

# A whole number is an int: YAML's 1.0 is a float and stays refused where a count goes.
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
)
_VALIDATOR = validators.extend(Draft202012Validator, type_checker=_TYPES)(SCHEMA)
_PLACEHOLDER = re.compile(r"\{(where|label|key|value|repr|kind|expected|present)\}")


class _Problems:
    """Collects every problem of a spec, each with a JSON pointer and a message."""

    def __init__(self, origin, lines, data):
        self.origin = origin
        self._lines = lines  # {pointer: line}, or a function that makes it when a message needs it
        self.data = data
        self.found = []

    def add(self, parts, message, rule=False):
        self.found.append((_order(self.data, parts, rule), list(parts), message))

    def has(self, parts):
        return any(found_parts == list(parts) for _, found_parts, _ in self.found)

    def raise_if_any(self):
        if not self.found:
            return
        items = []
        for _, parts, message in sorted(self.found, key=lambda found: found[0]):
            pointer = pointers.join(parts)
            items.append({"path": pointer or "/", "message": f"{message}{self._line_of(pointer)}"})
        if len(items) == 1:
            message = f"{self.origin}: {items[0]['message']}"
        else:
            listed = "\n".join(f"  - {p['message']}" for p in items)
            message = f"{self.origin}: {len(items)} problems:\n{listed}"
        raise ValidationError(message, errors=items)

    @property
    def lines(self):
        if callable(self._lines):
            self._lines = self._lines()
        return self._lines or {}

    def _line_of(self, pointer):
        # The line of the node, or of the nearest enclosing node we know (not the root).
        line, parent = None, pointer
        while parent and line is None:
            line = self.lines.get(parent)
            parent = parent.rsplit("/", 1)[0]
        return f" (line {line})" if line else ""


def _order(data, parts, rule):
    """Unknown top-level keys first, then the sections in schema order and the components
    one by one; inside each, its own shape, then its unknown keys, its keys in file order,
    and the rules that tie its keys together."""
    if not parts or parts[0] not in TOP_KEYS:
        return (0,)
    section, node, rest = (1 + TOP_KEYS.index(parts[0]),), data[parts[0]], parts[1:]
    if parts[0] == "components" and rest:
        section, node, rest = (*section, rest[0]), node[rest[0]], rest[1:]
    if rule:
        return (*section, 2)
    if not rest:
        return (*section, 0)
    keys = list(node) if isinstance(node, dict) else []
    known = rest[0] in _KNOWN_KEYS.get(parts[0], ())
    return (*section, 1, known, keys.index(rest[0]) if rest[0] in keys else len(keys))


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _where(data, parts):
    """(prefix naming the section `parts` is in, label of its component or "")."""
    if not parts:
        return "top level: ", ""
    if parts[0] in ("workspace", "change_set"):
        return f"{parts[0]}: ", ""
    if parts[0] != "components" or len(parts) < 2:
        return "", ""
    item = data["components"][parts[1]]
    label = f"component #{parts[1] + 1}"
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and name.strip():
        return f'{label} ("{name}"): ', label
    return f"{label}: ", label


def _words(error):
    """The errorMessage the schema gives for the keyword `error` failed, following $refs."""
    node = error.schema
    while isinstance(node, dict):
        words = node.get("errorMessage")
        if isinstance(words, dict):
            words = words.get(error.validator)
        if words:
            return words
        ref = node.get("$ref")
        node = pointers.resolve(SCHEMA, ref[1:]) if isinstance(ref, str) else None
    return error.message


def _named_keys(schema):
    """The keys that the `required` lists inside `schema` name."""
    if isinstance(schema, dict):
        yield from schema.get("required") or ()
        for value in schema.values():
            yield from _named_keys(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _named_keys(item)


def _unknown_keys(problems, parts, where, error):
    allowed = list(error.schema["properties"])
    for key in error.instance:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f' (did you mean "{close[0]}"?)' if close else f" (allowed: {', '.join(allowed)})"
            problems.add([*parts, key], f'{where}unknown key "{key}"{hint}')


def _check_schema(problems, data):
    for error in _VALIDATOR.iter_errors(data):
        parts = list(error.absolute_path)
        where, label = _where(data, parts)
        if error.validator == "additionalProperties":
            _unknown_keys(problems, parts, where, error)
            continue
        scalar = not isinstance(error.instance, dict | list)
        if scalar and problems.has(parts):
            continue  # a value gets one message: the first check it fails
        present = ""
        if error.validator == "not" and isinstance(error.instance, dict):
            named = dict.fromkeys(_named_keys(error.validator_value))
            present = " and ".join(f'"{k}"' for k in named if k in error.instance)
        fields = {
            "where": where,
            "label": label,
            "key": str(parts[-1]) if parts else "",
            "value": str(error.instance),
            "repr": repr(error.instance),
            "kind": _kind(error.instance),
            "expected": str(error.validator_value),
            "present": present,
        }
        problems.add(parts, _fill(_words(error), fields), rule="then" in error.schema_path)


def _fill(words, fields):
    return _PLACEHOLDER.sub(lambda m: fields[m.group(1)], words)


def _check_json_value(problems, parts, where, value, rel):
    """Only JSON values may go in (YAML also makes dates, non-string keys, ...).

    `rel` names the value for the user, e.g. "properties/Tags/0".
    """
    if isinstance(value, dict):
        for key, item in value.items():
            child = [*parts, key]
            if not isinstance(key, str):
                problems.add(child, f"{where}{rel}: key {key!r} must be a string: quote it")
            _check_json_value(problems, child, where, item, pointers.child(rel, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_value(problems, [*parts, index], where, item, f"{rel}/{index}")
    elif isinstance(value, datetime.date | datetime.datetime):
        problems.add(parts, f"{where}{rel}: {value} was read as a YAML date: quote it to keep a string")
    elif isinstance(value, float) and not math.isfinite(value):
        problems.add(parts, f"{where}{rel}: {value} is not a JSON number")
    elif not (value is None or isinstance(value, str | int | float | bool)):
        problems.add(parts, f"{where}{rel}: {_kind(value)} is not a JSON value")


def _check_sources(problems, parts, where, properties):
    for at, subscription in subscriptions.find(properties):
        message = shape_error(subscription)
        if message:
            problems.add([*parts, *pointers.split(at)], f"{where}properties{at or '/'}: {message}")


def _check_values(problems, data):
    """What the schema leaves to code: JSON values, subscriptions and unique names."""
    if isinstance(data.get("pipelines"), list):
        _check_json_value(problems, ["pipelines"], "", data["pipelines"], "pipelines")
    components = data.get("components")
    seen = {}
    for index, item in enumerate(components if isinstance(components, list) else []):
        if not isinstance(item, dict):
            continue
        where, _ = _where(data, ["components", index])
        name = item.get("name")
        if isinstance(name, str) and name.strip():
            if name == name.strip():
                try:
                    inputs.check_component_name(name)
                except ValidationError as exc:
                    problems.add(["components", index, "name"], f"{where}{exc.message}")
            if name in seen:
                problems.add(
                    ["components", index, "name"],
                    f"{where}duplicate name, component #{seen[name] + 1} has it already",
                )
            else:
                seen[name] = index
        if isinstance(item.get("properties"), dict):
            parts = ["components", index, "properties"]
            _check_json_value(problems, parts, where, item["properties"], "properties")
            try:
                inputs.check_document(item["properties"])
            except ValidationError as exc:
                problems.add(parts, f"{where}{exc.message}")
            _check_sources(problems, parts, where, item["properties"])


def parse_spec(data: dict, origin: str = "spec", *, _lines=None) -> Spec:
    """Validate parsed spec data and build a Spec; raise ValidationError listing every problem."""
    problems = _Problems(origin, _lines, data)
    # Before anything below recurses into the data or a string reaches the database.
    for error in inputs.json_value_errors(data):
        parts = [int(p) if p.isdigit() else p for p in pointers.split(error["path"])]
        problems.add(parts, f"{error['path']}: {error['message']}")
    problems.raise_if_any()
    _check_schema(problems, data)
    if isinstance(data, dict):
        _check_values(problems, data)
    problems.raise_if_any()
    return Spec(
        components=[_component(item) for item in data["components"]],
        workspace=_section(data, "workspace", WORKSPACE_KEYS),
        change_set=_section(data, "change_set", CHANGE_SET_KEYS),
        pipelines=copy.deepcopy(data.get("pipelines", [])),
    )


def _section(data, key, keys):
    return None if data.get(key) is None else _ordered(data[key], keys)


def _component(item):
    return ComponentSpec(
        name=item["name"],
        schema=item.get("schema"),
        properties=copy.deepcopy(item.get("properties")),
        delete=item.get("delete", False),
        replace=item.get("replace", False),
    )


# --- Dumping ----------------------------------------------------------------------------


def dump_spec(spec: Spec) -> dict:
    """A plain dict in a stable key order that load_spec/parse_spec read back equal."""
    out = {}
    if spec.workspace is not None:
        out["workspace"] = _ordered(spec.workspace, WORKSPACE_KEYS)
    if spec.change_set is not None:
        out["change_set"] = _ordered(spec.change_set, CHANGE_SET_KEYS)
    out["components"] = [_dump_component(c) for c in spec.components]
    if spec.pipelines:
        out["pipelines"] = copy.deepcopy(spec.pipelines)
    return out


def _ordered(section, keys):
    return {k: copy.deepcopy(section[k]) for k in keys if k in section}


def _dump_component(component):
    out = {"name": component.name}
    if component.schema is not None:
        out["schema"] = component.schema
    if component.delete:
        out["delete"] = True
    if component.replace:
        out["replace"] = True
    if component.properties is not None:
        out["properties"] = copy.deepcopy(component.properties)
    return out


def dumps_spec(spec: Spec, fmt: str = "yaml") -> str:
    """The spec as JSON or YAML text (fmt "json" or "yaml")."""
    data = dump_spec(spec)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    raise ValueError(f"unknown spec format {fmt!r}: use 'json' or 'yaml'")
