"""The schema registry: which component types exist and what their properties may be.

AWS types come from the CloudFormation registry schemas that cfn-lint ships
(`cfnlint/data/schemas/providers/<region>.json` maps a type name to a schema file in
`cfnlint/data/schemas/resources/`). Portal-authored types and extensions of AWS types are
JSON files in `portal/schemas/`, read before cfn-lint (see docs/schemas.md).

Pointers in a TypeSchema (create_only, read_only, ...) are relative to the properties
root: the registry's "/properties/ServiceName" is "/ServiceName" here, and "*" stands for
any list item ("/SecurityGroupIngress/*/SourceSecurityGroupName").

Validation errors are dicts {"path": JSON pointer of the offending value, "message":
plain words}. A subscription ({"$source": {...}}) may stand in for any value: nothing is
type-checked at or under it, and it counts as present for `required`.
"""

import copy
import difflib
import functools
import importlib.util
import json
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import regex  # cfn-lint's schemas use patterns that only the regex module compiles
from jsonschema import Draft7Validator, validators
from jsonschema import ValidationError as SchemaError
from jsonschema.exceptions import best_match

from . import pointers, string_template, subscriptions
from .errors import ValidationError
from .secrets import is_secret_name
from .subscriptions import is_subscription, shape_error

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
STRING_TEMPLATE = "Portal::StringTemplate"
PORTAL_PREFIX = "Portal::"

# Top-level keys of a registry schema that take part in validating a properties document
# (handlers, tagging, propertyTransform etc. describe the provider, not the document).
_VALIDATION_KEYS = (
    "properties",
    "definitions",
    "required",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "dependencies",
    "dependentRequired",
    "dependentExcluded",
    "requiredXor",
    "requiredOr",
)


# --------------------------------------------------------------------------- locations


@functools.cache
def _cfnlint_schemas_dir():
    # find_spec locates the installed package without importing it: `import cfnlint`
    # pulls in its whole linter (about a third of a second) and we only want data files.
    spec = importlib.util.find_spec("cfnlint")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("cfn-lint is not installed; it ships the CloudFormation registry schemas")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "schemas"


def _portal_schemas_dir():
    return resources.files("portal").joinpath("schemas")


def _read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


@functools.cache
def regions():
    """Regions cfn-lint has a type list for, sorted."""
    return sorted(p.stem for p in (_cfnlint_schemas_dir() / "providers").glob("*-*-*.json"))


@functools.cache
def _provider(region):
    """{type name: schema file hash} for one region."""
    if not isinstance(region, str) or region not in regions():
        raise ValidationError(f"Unknown region '{region}'.")
    return _read_json(_cfnlint_schemas_dir() / "providers" / f"{region}.json")


@functools.cache
def _portal_files():
    """(portal-authored types, extensions of registry types), each keyed by type name."""
    types, extensions = {}, {}
    for entry in sorted(_portal_schemas_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        doc = _read_json(entry)
        if "extends" in doc:
            extensions[doc["extends"]] = doc
        else:
            types[doc["typeName"]] = doc
    return types, extensions


def _schema_hash(type_name):
    """The resources/<hash>.json of a type: us-east-1's version, else any region's."""
    found = _provider(DEFAULT_REGION).get(type_name)
    if found is None:
        for region in regions():
            found = _provider(region).get(type_name)
            if found is not None:
                break
    return found


# --------------------------------------------------------------------------- type list


@functools.cache
def _type_names(region):
    portal_types, _ = _portal_files()
    return tuple(sorted(set(_provider(region)) | set(portal_types)))


def type_names(region=DEFAULT_REGION):
    """Every component type available in `region`, sorted (the Portal::* types included)."""
    return list(_type_names(region))


_CAMEL_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*|[a-z0-9]+")


@functools.cache
def _search_index(region):
    index = []
    for name in _type_names(region):
        segments = name.split("::")
        words = {w.lower() for segment in segments for w in _CAMEL_WORD.findall(segment)}
        index.append((name, name.lower(), [s.lower() for s in segments], words))
    return index


def search_types(query, limit=50, region=DEFAULT_REGION):
    """Type names matching `query`, best first.

    Every word of the query must occur in the name (case-insensitive); a word that is a
    whole segment ("ecs", "service") ranks above one that is a word of a segment
    ("group" in SecurityGroup), a prefix, or any substring. Shorter names win ties.
    """
    query = (query or "").strip().lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", query) if t]
    if not tokens:
        return type_names(region)[:limit]
    joined = "".join(tokens)
    scored = []
    for name, lower, segments, words in _search_index(region):
        if not all(t in lower for t in tokens):
            continue
        score = 1000 if lower == query else 0
        for token in tokens:
            if token in segments:
                score += 10
            elif token in words:
                score += 6
            elif any(s.startswith(token) for s in segments):
                score += 4
            elif any(w.startswith(token) for w in words):
                score += 3
            else:
                score += 1
        if tokens[-1] == segments[-1] or joined == segments[-1]:
            score += 5
        scored.append((-score, len(name), name))
    scored.sort()
    return [name for _, _, name in scored[:limit]]


def _closest(word, candidates, cutoff=0.6):
    """The candidate closest to `word` (case-insensitive), or None."""
    if not candidates:
        return None
    lowered = {}
    for candidate in candidates:
        lowered.setdefault(str(candidate).lower(), candidate)
    key = str(word).lower()
    if key in lowered:
        return lowered[key]
    match = difflib.get_close_matches(key, list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


# --------------------------------------------------------------------------- pointers


def _path_key(pointer):
    """Sort pointers segment by segment, list indexes numerically (/A/2 before /A/10)."""
    return [(0, int(p), "") if p.isascii() and p.isdigit() else (1, 0, p) for p in pointers.split(pointer)]


def _matches(pattern_parts, parts):
    return len(pattern_parts) == len(parts) and all(
        a == "*" or a == str(b) for a, b in zip(pattern_parts, parts, strict=True)
    )


# --------------------------------------------------------------------------- schema walking


def _deref(raw, node, _depth=0):
    """Follow local $refs ("#/definitions/X") until a node without one."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and _depth < 32:
        ref = node["$ref"]
        if not ref.startswith("#"):
            return None
        target = raw
        for part in pointers.split(ref[1:]):
            target = target.get(part) if isinstance(target, dict) else None
        node, _depth = target, _depth + 1
    return node


def _child_schema(raw, node, part):
    """The schema of `part` (a property name, a list index or "*") inside `node`."""
    node = _deref(raw, node)
    if not isinstance(node, dict):
        return None
    if part == "*" or str(part).isdigit():
        items = node.get("items")
        if isinstance(items, dict):
            return items
    properties = node.get("properties")
    if isinstance(properties, dict) and part in properties:
        return properties[part]
    for keyword in ("allOf", "oneOf", "anyOf"):
        for branch in node.get(keyword) or ():
            found = _child_schema(raw, branch, part)
            if found is not None:
                return found
    for pattern, sub in (node.get("patternProperties") or {}).items():
        regex = _compile(pattern)
        if regex is not None and regex.search(str(part)):
            return sub
    if isinstance(node.get("additionalProperties"), dict):
        return node["additionalProperties"]
    return None


def _is_array_schema(raw, node):
    node = _deref(raw, node)
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind) or "items" in node


def _relative_pointer(raw, pointer):
    """Registry pointer -> pointer relative to the properties, with "*" for list items.

    "/properties/Foo/Bar" becomes "/Foo/*/Bar" when the schema says Foo is a list (the
    registry writes it both ways).
    """
    parts = pointers.split(pointer)
    if parts[:1] == ["properties"]:
        parts = parts[1:]
    out, node = [], raw
    for i, part in enumerate(parts):
        node = _child_schema(raw, node, part)
        out.append(part)
        following = parts[i + 1] if i + 1 < len(parts) else None
        if following is not None and following != "*" and not following.isdigit():
            if _is_array_schema(raw, node):
                out.append("*")
                node = _child_schema(raw, node, "*")
    return pointers.join(out)


# --------------------------------------------------------------------------- TypeSchema


@dataclass(frozen=True, eq=False)
class TypeSchema:
    type_name: str
    raw: dict = field(repr=False)
    property_names: list
    required: list
    create_only: list
    read_only: list
    write_only: list
    primary_identifier: list
    description: str
    conditional_create_only: list = field(default_factory=list)

    @property
    def is_portal_type(self):
        return self.type_name.startswith(PORTAL_PREFIX)

    def subschema(self, pointer):
        """The (dereferenced) schema of the value at a relative pointer, or None."""
        node = self.raw
        for part in pointers.split(pointer):
            node = _child_schema(self.raw, node, part)
            if node is None:
                return None
        return _deref(self.raw, node)

    def is_unordered(self, pointer):
        """True when the list at `pointer` has insertionOrder false (order carries no meaning)."""
        node = self.subschema(pointer)
        return isinstance(node, dict) and node.get("insertionOrder") is False


def _merge_patch(target, patch):
    """RFC 7396 JSON merge patch: dicts merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _extend(raw, extension):
    """Apply a portal extension file (merge patch, then list removals and additions)."""
    raw = _merge_patch(raw, extension.get("merge") or {})
    for key, items in (extension.get("remove") or {}).items():
        raw[key] = [item for item in raw.get(key) or [] if item not in items]
    for key, items in (extension.get("add") or {}).items():
        existing = list(raw.get(key) or [])
        raw[key] = existing + [item for item in items if item not in existing]
    return raw


def _unknown_type(type_name):
    suggestion = _closest(type_name, _type_names(DEFAULT_REGION), cutoff=0.75)
    message = f"Unknown component type '{type_name}'."
    if suggestion:
        message += f" Did you mean {suggestion}?"
    return ValidationError(message)


def _load_raw(type_name):
    portal_types, extensions = _portal_files()
    if type_name in portal_types:
        return copy.deepcopy(portal_types[type_name])
    schema_hash = _schema_hash(type_name) if isinstance(type_name, str) else None
    if schema_hash is None:
        raise _unknown_type(type_name)
    raw = _read_json(_cfnlint_schemas_dir() / "resources" / f"{schema_hash}.json")
    if type_name in extensions:
        raw = _extend(raw, extensions[type_name])
    return raw


@functools.lru_cache(maxsize=512)
def get_schema(type_name):
    """The TypeSchema of a component type; ValidationError (with a suggestion) if unknown."""
    raw = _load_raw(type_name)

    def relative(key):
        return [_relative_pointer(raw, p) for p in raw.get(key) or [] if isinstance(p, str)]

    properties = raw.get("properties") or {}
    return TypeSchema(
        type_name=type_name,
        raw=raw,
        property_names=sorted(properties),
        required=list(raw.get("required") or []),
        create_only=relative("createOnlyProperties"),
        read_only=relative("readOnlyProperties"),
        write_only=relative("writeOnlyProperties"),
        primary_identifier=relative("primaryIdentifier"),
        description=raw.get("description") or "",
        conditional_create_only=relative("conditionalCreateOnlyProperties"),
    )


def write_only_for(type_name):
    """Pointers (relative, "*" for list items) of the values AWS never returns: mask them.

    [] for a type the registry does not know: masking by name still applies there.
    """
    try:
        return list(get_schema(type_name).write_only)
    except ValidationError:
        return []


# --------------------------------------------------------------------------- replacement

_MISSING = object()


def _get(node, part):
    if isinstance(node, dict) and not is_subscription(node):
        return node.get(part, _MISSING)
    if isinstance(node, list) and isinstance(part, int):
        return node[part] if part < len(node) else _MISSING
    return _MISSING


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _differs(old, new, unordered):
    if unordered and isinstance(old, list) and isinstance(new, list):
        return sorted(map(_canonical, old)) != sorted(map(_canonical, new))
    return old != new


def _changed_paths(pattern, old, new, unordered, prefix=()):
    """Concrete paths matching `pattern` (with "*") where old and new differ."""
    if old is new or (old is not _MISSING and new is not _MISSING and old == new):
        return
    if not pattern:
        if _differs(old, new, unordered):
            yield pointers.join(prefix)
        return
    part, rest = pattern[0], pattern[1:]
    if part == "*":
        lists = [v for v in (old, new) if v is not _MISSING]
        if not all(isinstance(v, list) for v in lists):
            yield pointers.join(prefix)  # a list on one side, something else (a subscription) on the other
            return
        length = max(len(v) for v in lists)
        for i in range(length):
            yield from _changed_paths(rest, _get(old, i), _get(new, i), unordered, (*prefix, i))
        return
    containers = [v for v in (old, new) if v is not _MISSING]
    if not all(isinstance(v, dict) and not is_subscription(v) for v in containers):
        yield pointers.join(prefix)
        return
    yield from _changed_paths(rest, _get(old, part), _get(new, part), unordered, (*prefix, part))


def replacement_paths(type_name, old, new):
    """createOnly pointers (concrete: "/ServiceName", "/Foo/0/Bar") whose value differs
    between the `old` and `new` property dicts: changing any of them replaces the resource."""
    schema = get_schema(type_name)
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    found = set()
    for pointer in schema.create_only:
        unordered = "*" not in pointer and schema.is_unordered(pointer)
        found.update(_changed_paths(pointers.split(pointer), old, new, unordered))
    found.discard("")
    return sorted(found, key=_path_key)


# --------------------------------------------------------------------------- validator


@functools.lru_cache(maxsize=4096)
def _compile(pattern):
    """A compiled regex, or None when neither `re` nor `regex` can compile it.

    Registry patterns are ECMA/Java flavoured; `\\p{L}` and friends need the `regex`
    module (a cfn-lint dependency). An uncompilable pattern is ignored, never fatal.
    """
    try:
        return re.compile(pattern)
    except (re.error, TypeError, ValueError, OverflowError, RecursionError):
        pass
    try:
        return regex.compile(pattern)
    except Exception:  # any failure means "cannot use this pattern"
        logger.debug("ignoring uncompilable schema pattern %r", pattern)
        return None


def _kw_pattern(validator, pattern, instance, schema):
    if isinstance(instance, str):
        regex = _compile(pattern)
        if regex is not None and not regex.search(instance):
            yield SchemaError(f"does not match the pattern {pattern}")


def _kw_pattern_properties(validator, pattern_properties, instance, schema):
    if not isinstance(instance, dict):
        return
    for pattern, subschema in pattern_properties.items():
        regex = _compile(pattern)
        if regex is None:
            continue
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _allowed_by_patterns(key, schema):
    for pattern in schema.get("patternProperties") or {}:
        regex = _compile(pattern)
        if regex is None or regex.search(key):  # an unusable pattern allows anything
            return True
    return False


def _kw_additional_properties(validator, additional, instance, schema):
    if not isinstance(instance, dict):
        return
    known = schema.get("properties") or {}
    extras = [k for k in instance if k not in known and not _allowed_by_patterns(k, schema)]
    if isinstance(additional, dict):
        for key in extras:
            yield from validator.descend(instance[key], additional, path=key)
    elif additional is False:
        for key in extras:
            message = f"unknown property {key}"
            suggestion = _closest(key, list(known))
            if suggestion:
                message += f"; did you mean {suggestion}?"
            elif 0 < len(known) <= 12:
                message += f"; allowed here: {', '.join(sorted(known))}"
            yield SchemaError(message, path=[key])


def _kw_required(validator, required, instance, schema):
    if isinstance(instance, dict) and isinstance(required, list):
        for name in required:
            if name not in instance:
                yield SchemaError(f"{name} is required but missing", path=[name])


def _required_when(instance, dependencies):
    for name, needed in dependencies.items():
        if name in instance and isinstance(needed, list):
            for each in needed:
                if each not in instance:
                    yield SchemaError(f"{each} is required when {name} is set", path=[each])


def _kw_dependent_required(validator, dependencies, instance, schema):
    if isinstance(instance, dict) and isinstance(dependencies, dict):
        yield from _required_when(instance, dependencies)


def _kw_dependencies(validator, dependencies, instance, schema):
    if not isinstance(instance, dict) or not isinstance(dependencies, dict):
        return
    yield from _required_when(instance, dependencies)
    for name, subschema in dependencies.items():
        if name in instance and isinstance(subschema, dict | bool):
            yield from validator.descend(instance, subschema, schema_path=name)


def _kw_dependent_excluded(validator, excluded, instance, schema):
    if not isinstance(instance, dict) or not isinstance(excluded, dict):
        return
    for name, others in excluded.items():
        if name in instance:
            for other in others or ():
                if other in instance:
                    yield SchemaError(f"{other} cannot be set together with {name}", path=[other])


def _kw_required_xor(validator, names, instance, schema):
    if not isinstance(instance, dict):
        return
    present = [n for n in names if n in instance]
    if not present:
        yield SchemaError(f"set exactly one of {', '.join(names)}; none is set")
    elif len(present) > 1:
        for name in present:
            others = ", ".join(n for n in present if n != name)
            yield SchemaError(f"set exactly one of {', '.join(names)}; {others} is set too", path=[name])


def _kw_required_or(validator, names, instance, schema):
    if isinstance(instance, dict) and not any(n in instance for n in names):
        yield SchemaError(f"set at least one of {', '.join(names)}")


def _skip_subscriptions(keyword):
    """Wrap a keyword so that a subscription node is never checked: it is resolved later."""

    def check(validator, value, instance, schema):
        if is_subscription(instance):
            return ()
        return keyword(validator, value, instance, schema) or ()

    check.__name__ = getattr(keyword, "__name__", "keyword")
    return check


def _portal_validator_class():
    keywords = dict(Draft7Validator.VALIDATORS)
    keywords.pop("format", None)  # registry formats ("AWS::EC2::VPC.Id") are hints, not checks
    keywords.update(
        {
            "pattern": _kw_pattern,
            "patternProperties": _kw_pattern_properties,
            "additionalProperties": _kw_additional_properties,
            "required": _kw_required,
            "dependencies": _kw_dependencies,
            "dependentRequired": _kw_dependent_required,
            "dependentExcluded": _kw_dependent_excluded,
            "requiredXor": _kw_required_xor,
            "requiredOr": _kw_required_or,
        }
    )
    wrapped = {name: _skip_subscriptions(fn) for name, fn in keywords.items()}
    # No `version=`: that would register this class as *the* draft-07 validator for all
    # of jsonschema's callers.
    return validators.extend(Draft7Validator, validators=wrapped)


PortalValidator = _portal_validator_class()
# Keywords whose messages are written here already in plain words.
_OWN_MESSAGES = {
    "pattern",
    "additionalProperties",
    "required",
    "dependencies",
    "dependentRequired",
    "dependentExcluded",
    "requiredXor",
    "requiredOr",
}


def _validation_schema(schema):
    raw = schema.raw
    out = {key: raw[key] for key in _VALIDATION_KEYS if key in raw}
    out["type"] = "object"
    # A read-only property is reported as such when set; it is never "missing".
    top_read_only = {p[1:] for p in schema.read_only if p.count("/") == 1}
    if isinstance(out.get("required"), list):
        out["required"] = [n for n in out["required"] if n not in top_read_only]
    return out


@functools.lru_cache(maxsize=512)
def _validator(type_name):
    return PortalValidator(_validation_schema(get_schema(type_name)))


# --------------------------------------------------------------------------- messages

_ARTICLE_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _show(value, limit=60):
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _got(value, secret):
    return "" if secret else f" (got {_show(value)})"


def _only_required(branch):
    """The `required` list of a oneOf/anyOf branch that says nothing else, else None."""
    if isinstance(branch, dict) and set(branch) <= {"required", "description", "title", "$comment"}:
        required = branch.get("required")
        if isinstance(required, list) and required:
            return required
    return None


def _is_secret_path(schema, document, parts):
    """Whether the value at `parts` must not be echoed in a message (see portal.secrets)."""
    keys = [p for p in parts if isinstance(p, str)]
    if keys and is_secret_name(keys[-1]):
        return True
    if parts and parts[-1] in ("Value", "value"):  # ECS-style {"Name": "DB_PASSWORD", "Value": ...}
        parent = document
        for part in parts[:-1]:
            parent = _get(parent, part)
        if isinstance(parent, dict) and is_secret_name(parent.get("Name", parent.get("name"))):
            return True
    return any(_matches(pointers.split(p), parts) for p in schema.write_only)


def _describe(schema, error, document):
    """One jsonschema error -> [{"path", "message"}] in plain words."""
    parts = list(error.absolute_path)
    path = pointers.join(parts)
    keyword, expected, value = error.validator, error.validator_value, error.instance
    secret = _is_secret_path(schema, document, parts)

    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        return [{"path": path, "message": f"key {_show(value)} is not allowed: {error.message}"}]
    if keyword in _OWN_MESSAGES:
        message = error.message + (_got(value, secret) if keyword == "pattern" else "")
    elif keyword == "type":
        wanted = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_ARTICLE_TYPES.get(w, str(w)) for w in wanted)
        message = f"must be {words}, not {_kind(value)}{_got(value, secret)}"
    elif keyword == "enum":
        options = ", ".join(_show(o, 40) for o in expected[:15]) + (", …" if len(expected) > 15 else "")
        message = f"must be one of {options}{_got(value, secret)}"
        if isinstance(value, str):
            suggestion = _closest(value, [o for o in expected if isinstance(o, str)])
            if suggestion is not None and suggestion != value:
                message += f"; did you mean {_show(suggestion)}?"
    elif keyword == "const":
        message = f"must be {_show(expected)}{_got(value, secret)}"
    elif keyword == "minLength":
        message = f"is too short: at least {expected} characters, this has {len(value)}"
    elif keyword == "maxLength":
        message = f"is too long: at most {expected} characters, this has {len(value)}"
    elif keyword == "minimum":
        message = f"must be at least {expected}{_got(value, secret)}"
    elif keyword == "maximum":
        message = f"must be at most {expected}{_got(value, secret)}"
    elif keyword == "exclusiveMinimum":
        message = f"must be greater than {expected}{_got(value, secret)}"
    elif keyword == "exclusiveMaximum":
        message = f"must be less than {expected}{_got(value, secret)}"
    elif keyword == "multipleOf":
        message = f"must be a multiple of {expected}{_got(value, secret)}"
    elif keyword == "minItems":
        message = f"needs at least {expected} item{'s' * (expected != 1)}, this has {len(value)}"
    elif keyword == "maxItems":
        message = f"takes at most {expected} item{'s' * (expected != 1)}, this has {len(value)}"
    elif keyword == "uniqueItems":
        message = "has duplicate items; each item must be different"
    elif keyword == "minProperties":
        message = f"needs at least {expected} entr{'ies' if expected != 1 else 'y'}, this has {len(value)}"
    elif keyword == "maxProperties":
        message = f"takes at most {expected} entr{'ies' if expected != 1 else 'y'}, this has {len(value)}"
    elif keyword in ("oneOf", "anyOf"):
        return _describe_alternatives(schema, error, path, document)
    elif keyword == "not":
        names = _only_required(expected)
        if names:
            message = f"{' and '.join(names)} cannot be set together"
        else:
            message = "this value is not allowed here"
    else:
        message = error.message
    return [{"path": path, "message": message}]


def _describe_alternatives(schema, error, path, document):
    branches = error.validator_value if isinstance(error.validator_value, list) else []
    required_sets = [_only_required(b) for b in branches]
    plain = bool(branches) and all(required_sets)
    listing = ", ".join(" and ".join(names) for names in required_sets) if plain else ""
    if not error.context:  # oneOf: more than one alternative matched
        if plain:
            return [{"path": path, "message": f"set exactly one of {listing}; more than one is set"}]
        return [{"path": path, "message": "matches more than one of the allowed forms; it must match one"}]
    if plain:
        if len(required_sets) == 1:
            return [{"path": path, "message": f"set {listing}"}]
        how = "exactly" if error.validator == "oneOf" else "at least"
        return [{"path": path, "message": f"set {how} one of {listing}"}]
    inner = _describe(schema, best_match(error.context), document)
    if len(branches) < 2:
        return inner
    suffix = f" (the value must match one of {len(branches)} allowed forms)"
    return [{"path": d["path"], "message": d["message"] + suffix} for d in inner]


# --------------------------------------------------------------------------- validation


def _subscription_shape_errors(properties):
    for pointer, subscription in subscriptions.find(properties):
        message = shape_error(subscription)
        if message:
            yield {"path": pointer, "message": message}


def _present(document, pattern, prefix=()):
    """Concrete paths matching `pattern` that hold a value in `document`."""
    if not pattern:
        yield prefix
        return
    if is_subscription(document):
        return
    part, rest = pattern[0], pattern[1:]
    if part == "*":
        if isinstance(document, list):
            for i, item in enumerate(document):
                yield from _present(item, rest, (*prefix, i))
    elif isinstance(document, dict) and part in document:
        yield from _present(document[part], rest, (*prefix, part))


def _read_only_errors(schema, properties):
    if schema.is_portal_type:
        who, root = "the portal computes it", "/domain"
    else:
        who, root = "AWS sets it", "/resource_value"
    for pointer in schema.read_only:
        for parts in _present(properties, pointers.split(pointer)):
            name = next((p for p in reversed(parts) if isinstance(p, str)), pointer)
            path = pointers.join(parts)
            yield {"path": path, "message": f"{name} is read-only: {who}; subscribe to {root}{path} instead"}


def _string_template_errors(properties):
    template, variables = properties.get("Template"), properties.get("Variables", {})
    if not isinstance(template, str) or is_subscription(variables) or not isinstance(variables, dict):
        return []
    missing = string_template.unknown_placeholders(template, variables)
    if not missing:
        return []
    return [{"path": "/Template", "message": string_template.unknown_placeholder_message(missing, variables)}]


_EXTRA_CHECKS = {STRING_TEMPLATE: _string_template_errors}


def _under(path, prefix):
    return path == prefix or path.startswith(prefix + "/")


def validate_properties(type_name, properties):
    """Errors of a component's properties, [] when valid, sorted by path.

    Each error is {"path": JSON pointer of the offending value, "message": plain words}.
    Raises ValidationError only for an unknown type.
    """
    schema = get_schema(type_name)
    if not isinstance(properties, dict):
        return [{"path": "", "message": f"properties must be an object, not {_kind(properties)}"}]
    errors = []
    try:
        for error in _validator(type_name).iter_errors(properties):
            errors.extend(_describe(schema, error, properties))
    except Exception as exc:  # a broken upstream schema must not break editing
        logger.exception("schema of %s could not be applied", type_name)
        errors.append({"path": "", "message": f"the {type_name} schema could not be fully applied: {exc}"})
    read_only = list(_read_only_errors(schema, properties))
    if read_only:
        flagged = [e["path"] for e in read_only]
        errors = [e for e in errors if not any(_under(e["path"], p) for p in flagged)]
        errors.extend(read_only)
    errors.extend(_subscription_shape_errors(properties))
    check = _EXTRA_CHECKS.get(type_name)
    if check is not None:
        errors.extend(check(properties))
    unique = {(e["path"], e["message"]): e for e in errors}
    return sorted(unique.values(), key=lambda e: (_path_key(e["path"]), e["message"]))
