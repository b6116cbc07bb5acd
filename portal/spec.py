"""Spec files: a workspace or a change set written as JSON or YAML.

The contract (keep it exactly; extend only):

    {"components": [{"name": "...", "schema": "AWS::EC2::VPC", "properties": {...}},
                    {"name": "...", "delete": true}]}

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

import yaml

from . import inputs
from .errors import ValidationError

TOP_KEYS = ("workspace", "change_set", "components", "pipelines")
COMPONENT_KEYS = ("name", "schema", "delete", "replace", "properties")
WORKSPACE_KEYS = ("name", "slug", "region", "approvals_required")
CHANGE_SET_KEYS = ("name", "problem", "solution")
SPEC_SUFFIXES = (".json", ".yaml", ".yml")
SOURCE_KEY = "$source"
SOURCE_ROOTS = ("domain", "resource_value", "si")

# A CloudFormation type name (AWS::EC2::VPC) or a portal type (Portal::StringTemplate).
TYPE_NAME = re.compile(r"^[A-Za-z0-9]+::[A-Za-z0-9]+(::[A-Za-z0-9]+)?$")
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


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
    return parse_spec(data, origin, _lines=_line_map(text))


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
                    walk(value_node, f"{pointer}/{_escape(key_node.value)}")
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{pointer}/{index}")

    walk(root, "")
    return lines


def _escape(key):
    return str(key).replace("~", "~0").replace("/", "~1")


# --- Validation -------------------------------------------------------------------------


class _Problems:
    """Collects every problem of a spec, each with a JSON pointer and a message."""

    def __init__(self, origin, lines):
        self.origin = origin
        self.lines = lines or {}
        self.items = []

    def add(self, pointer, message):
        # The line of the node, or of the nearest enclosing node we know (not the root).
        line, parent = None, pointer
        while parent and line is None:
            line = self.lines.get(parent)
            parent = parent.rsplit("/", 1)[0]
        suffix = f" (line {line})" if line else ""
        self.items.append({"path": pointer or "/", "message": f"{message}{suffix}"})

    def raise_if_any(self):
        if not self.items:
            return
        if len(self.items) == 1:
            message = f"{self.origin}: {self.items[0]['message']}"
        else:
            listed = "\n".join(f"  - {p['message']}" for p in self.items)
            message = f"{self.origin}: {len(self.items)} problems:\n{listed}"
        raise ValidationError(message, errors=self.items)


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


def _unknown_keys(problems, pointer, where, data, allowed):
    for key in data:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else f" (allowed: {', '.join(allowed)})"
        problems.add(f"{pointer}/{_escape(key)}", f'{where}unknown key "{key}"{hint}')


def _check_json_value(problems, pointer, where, value, rel):
    """Only JSON values may go in (YAML also makes dates, non-string keys, ...).

    `rel` names the value for the user, e.g. "properties/Tags/0".
    """
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{pointer}/{_escape(key)}"
            if not isinstance(key, str):
                problems.add(child, f"{where}{rel}: key {key!r} must be a string: quote it")
            _check_json_value(problems, child, where, item, f"{rel}/{_escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_value(problems, f"{pointer}/{index}", where, item, f"{rel}/{index}")
    elif isinstance(value, datetime.date | datetime.datetime):
        problems.add(pointer, f"{where}{rel}: {value} was read as a YAML date: quote it to keep a string")
    elif isinstance(value, float) and not math.isfinite(value):
        problems.add(pointer, f"{where}{rel}: {value} is not a JSON number")
    elif not (value is None or isinstance(value, str | int | float | bool)):
        problems.add(pointer, f"{where}{rel}: {_kind(value)} is not a JSON value")


def _check_sources(problems, pointer, where, value, rel=""):
    """Subscriptions must read {"$source": {"component": NAME, "path": POINTER}}."""
    if isinstance(value, dict):
        if SOURCE_KEY in value:
            at = rel or "/"
            shape = '{"$source": {"component": NAME, "path": POINTER}}'
            spec = value[SOURCE_KEY]
            if len(value) != 1:
                others = ", ".join(f'"{k}"' for k in value if k != SOURCE_KEY)
                problems.add(
                    pointer, f"{where}properties{at}: a subscription is {shape} alone, not with {others}"
                )
            elif not isinstance(spec, dict) or set(spec) != {"component", "path"}:
                problems.add(pointer, f"{where}properties{at}: a subscription must read {shape}")
            elif not isinstance(spec["component"], str) or not spec["component"]:
                problems.add(pointer, f"{where}properties{at}: the subscription's component must be a name")
            elif (
                not isinstance(spec["path"], str)
                or not spec["path"].startswith("/")
                or spec["path"].split("/")[1] not in SOURCE_ROOTS
            ):
                problems.add(
                    pointer,
                    f"{where}properties{at}: the subscription's path {spec['path']!r} must be a JSON "
                    "pointer starting with /domain, /resource_value or /si",
                )
            return
        for key, item in value.items():
            _check_sources(problems, f"{pointer}/{_escape(key)}", where, item, f"{rel}/{_escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_sources(problems, f"{pointer}/{index}", where, item, f"{rel}/{index}")


def parse_spec(data: dict, origin: str = "spec", *, _lines: dict | None = None) -> Spec:
    """Validate parsed spec data and build a Spec; raise ValidationError listing every problem."""
    problems = _Problems(origin, _lines)
    if not isinstance(data, dict):
        problems.add("", f'a spec must be an object with a "components" list, not {_kind(data)}')
        problems.raise_if_any()
    # Before anything below recurses into the data or a string reaches the database.
    for error in inputs.json_value_errors(data):
        problems.add(error["path"], f"{error['path']}: {error['message']}")
    problems.raise_if_any()

    _unknown_keys(problems, "", "top level: ", data, TOP_KEYS)

    workspace = _parse_section(problems, data, "workspace", WORKSPACE_KEYS, _check_workspace)
    change_set = _parse_section(problems, data, "change_set", CHANGE_SET_KEYS, _check_change_set)

    pipelines = data.get("pipelines", [])
    if not isinstance(pipelines, list):
        problems.add("/pipelines", f'"pipelines" must be a list, not {_kind(pipelines)}')
        pipelines = []
    else:
        _check_json_value(problems, "/pipelines", "", pipelines, "pipelines")

    components = []
    if "components" not in data:
        problems.add(
            "",
            '"components" is missing: a spec lists its components as '
            '{"components": [{"name": ..., "schema": ..., "properties": {...}}]}',
        )
    elif not isinstance(data["components"], list):
        problems.add("/components", f'"components" must be a list, not {_kind(data["components"])}')
    else:
        seen = {}
        for index, item in enumerate(data["components"]):
            component = _parse_component(problems, index, item, seen)
            if component is not None:
                components.append(component)

    problems.raise_if_any()
    return Spec(
        components=components,
        workspace=workspace,
        change_set=change_set,
        pipelines=copy.deepcopy(pipelines),
    )


def _parse_section(problems, data, key, allowed, check):
    if key not in data or data[key] is None:
        return None
    section = data[key]
    if not isinstance(section, dict):
        problems.add(f"/{key}", f'"{key}" must be an object, not {_kind(section)}')
        return None
    _unknown_keys(problems, f"/{key}", f"{key}: ", section, allowed)
    check(problems, section)
    return {k: copy.deepcopy(section[k]) for k in allowed if k in section}


def _check_workspace(problems, ws):
    for key in ("name", "slug", "region"):
        if key in ws and (not isinstance(ws[key], str) or not ws[key].strip()):
            problems.add(f"/workspace/{key}", f'workspace: "{key}" must be a non-empty string')
    for key, limit in (("name", 200), ("slug", 100)):
        if isinstance(ws.get(key), str) and len(ws[key]) > limit:
            problems.add(f"/workspace/{key}", f'workspace: "{key}" is longer than {limit} characters')
    if isinstance(ws.get("slug"), str) and ws["slug"].strip() and not SLUG.match(ws["slug"]):
        problems.add(
            "/workspace/slug",
            f'workspace: slug "{ws["slug"]}" may hold only letters, digits, "-" and "_"',
        )
    if isinstance(ws.get("region"), str) and ws["region"].strip() and not REGION.match(ws["region"]):
        problems.add(
            "/workspace/region", f'workspace: region "{ws["region"]}" is not an AWS region like us-east-1'
        )
    if "approvals_required" in ws:
        value = ws["approvals_required"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.add(
                "/workspace/approvals_required",
                f'workspace: "approvals_required" must be a whole number, 0 or more, not {value!r}',
            )


def _check_change_set(problems, cs):
    for key in CHANGE_SET_KEYS:
        if key in cs and not isinstance(cs[key], str):
            problems.add(f"/change_set/{key}", f'change_set: "{key}" must be a string, not {_kind(cs[key])}')
    if isinstance(cs.get("name"), str) and not cs["name"].strip():
        problems.add("/change_set/name", 'change_set: "name" must not be empty')


def _parse_component(problems, index, item, seen):
    pointer = f"/components/{index}"
    label = f"component #{index + 1}"
    if not isinstance(item, dict):
        problems.add(pointer, f"{label} must be an object with a name, not {_kind(item)}")
        return None

    name = item.get("name")
    if "name" not in item or name is None:
        problems.add(pointer, f'{label} has no "name"')
        name = None
    elif not isinstance(name, str) or not name.strip():
        problems.add(f"{pointer}/name", f'{label}: "name" must be a non-empty string, not {name!r}')
        name = None
    else:
        label = f'{label} ("{name}")'
        if name != name.strip():
            problems.add(f"{pointer}/name", f"{label}: the name has spaces at its start or end")
        else:
            try:
                inputs.check_component_name(name)
            except ValidationError as exc:
                problems.add(f"{pointer}/name", f"{label}: {exc.message}")
        if name in seen:
            problems.add(
                f"{pointer}/name", f"{label}: duplicate name, component #{seen[name] + 1} has it already"
            )
        else:
            seen[name] = index
    where = f"{label}: "

    _unknown_keys(problems, pointer, where, item, COMPONENT_KEYS)

    ok = True
    flags = {}
    for flag in ("delete", "replace"):
        value = item.get(flag, False)
        if not isinstance(value, bool):
            problems.add(f"{pointer}/{flag}", f'{where}"{flag}" must be true or false, not {value!r}')
            ok = False
            value = False
        flags[flag] = value

    schema = item.get("schema")
    if schema is not None:
        if not isinstance(schema, str) or not TYPE_NAME.match(schema):
            problems.add(
                f"{pointer}/schema",
                f'{where}"schema" {schema!r} is not a type name like AWS::EC2::VPC or Portal::StringTemplate',
            )
            ok = False

    has_properties = "properties" in item and item["properties"] is not None
    properties = item.get("properties")
    if has_properties:
        if not isinstance(properties, dict):
            problems.add(
                f"{pointer}/properties", f'{where}"properties" must be an object, not {_kind(properties)}'
            )
            ok = False
        else:
            _check_json_value(problems, f"{pointer}/properties", where, properties, "properties")
            _check_sources(problems, f"{pointer}/properties", where, properties)

    if flags["delete"]:
        given = [k for k in ("schema", "properties") if k in item]
        if given:
            listed = " and ".join(f'"{k}"' for k in given)
            problems.add(
                pointer,
                f'{where}"delete": true cannot go with {listed}: a deleted component keeps no '
                "properties; remove one or the other",
            )
            ok = False
        if flags["replace"]:
            problems.add(
                pointer,
                f'{where}"delete": true cannot go with "replace": true: replace deletes and recreates, '
                "delete only deletes",
            )
            ok = False
    elif schema is None and "schema" not in item:
        if has_properties:
            problems.add(
                pointer,
                f'{where}"schema" is missing: a component with properties needs its type, '
                'e.g. "schema": "AWS::EC2::VPC"',
            )
            ok = False
        elif not flags["replace"]:
            problems.add(
                pointer,
                f'{where}says nothing to do: give "schema" and "properties", "delete": true '
                'or "replace": true',
            )
            ok = False

    if not ok or name is None:
        return None
    return ComponentSpec(
        name=name,
        schema=schema,
        properties=copy.deepcopy(properties) if has_properties else None,
        delete=flags["delete"],
        replace=flags["replace"],
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
