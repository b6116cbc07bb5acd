"""What the portal accepts from a user, wherever it comes from (a page, a command, a spec
file): component names, JSON documents and object ids.

Each rule lives here once; the entry points call it before anything is parsed deeper,
walked or saved. This module needs no database and no Django setup.
"""

import re
import unicodedata

from . import pointers
from .errors import ValidationError

MAX_NAME = 255
# Letters, digits, "-", "_" and "." (a CloudFormation logical id widened with the usual
# separators), starting with a letter or digit: every such name stands in a URL as it is.
COMPONENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Characters that make a text read differently from what it holds.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

MAX_JSON_DEPTH = 64
# A JSON string (skipped whole) or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)

MAX_ID = 2**63 - 1  # the largest Postgres bigint


def _hidden_character(text):
    """The first control character or bidi override in `text`, as U+XXXX, or None."""
    for ch in text:
        if ch in BIDI_CONTROLS or unicodedata.category(ch) == "Cc":
            return f"U+{ord(ch):04X}"
    return None


def check_component_name(name):
    """Raise ValidationError unless `name` can name a component (and stand in its URLs)."""
    hidden = _hidden_character(name)
    if hidden:
        raise ValidationError(
            f"{name!r} cannot name a component: it holds the invisible character {hidden} "
            "(a control character or a text-direction override)."
        )
    if len(name) > MAX_NAME:
        raise ValidationError(f"A component name is longer than {MAX_NAME} characters ({len(name)}).")
    if not COMPONENT_NAME.fullmatch(name):
        raise ValidationError(
            f"{name!r} cannot name a component: a name holds only letters, digits, '-', '_' and '.', "
            "and starts with a letter or a digit."
        )


def check_text_name(name, what="A name"):
    """Raise ValidationError if a free-text name hides characters from whoever reads it."""
    hidden = _hidden_character(name)
    if hidden:
        raise ValidationError(
            f"{what} holds the invisible character {hidden} "
            "(a control character or a text-direction override): remove it."
        )


def check_json_text(text, origin="the JSON"):
    """Refuse JSON text nested deeper than MAX_JSON_DEPTH, before a parser recurses into it."""
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                raise _too_deep(origin, f" (line {line})")
        elif bracket in ("]", "}"):
            depth -= 1


def check_yaml_events(events, origin="the YAML"):
    """Refuse a YAML event stream nested deeper than MAX_JSON_DEPTH, before it is composed."""
    import yaml

    depth = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise _too_deep(origin, f" (line {event.start_mark.line + 1})")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _too_deep(origin, where):
    return ValidationError(f"{origin} is nested deeper than {MAX_JSON_DEPTH} levels{where}.")


def json_value_errors(value, path=""):
    """[{path, message}] for what a JSON value may not hold: nesting deeper than
    MAX_JSON_DEPTH and lone surrogates (an escape like \\ud800 that is no character, and
    that no database or page can store). Walks without recursion."""
    errors = []
    stack = [(value, path, 1)]
    while stack:
        item, at, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                errors.append({"path": at or "/", "message": f"nested deeper than {MAX_JSON_DEPTH} levels"})
                continue
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                child_at = pointers.child(at, key)
                if isinstance(key, str) and _has_lone_surrogate(key):
                    errors.append({"path": child_at, "message": _SURROGATE})
                stack.append((child, child_at, depth + 1))
        elif isinstance(item, str) and _has_lone_surrogate(item):
            errors.append({"path": at or "/", "message": _SURROGATE})
    return sorted(errors, key=lambda e: e["path"])


_SURROGATE = "holds a lone UTF-16 surrogate (an escape like \\ud800 that is no character): fix the text"


def check_json_value(value, what="The value"):
    """Raise ValidationError listing json_value_errors(value), if any."""
    errors = json_value_errors(value)
    if errors:
        first = errors[0]
        raise ValidationError(f"{what} at {first['path']} {first['message']}.", errors=errors)


def _has_lone_surrogate(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_id(text):
    """The id `text` spells (1 .. MAX_ID), else ValueError saying what an id is."""
    value = str(text).strip()
    if value.isascii() and value.isdigit() and len(value) <= 19 and 1 <= int(value) <= MAX_ID:
        return int(value)
    raise ValueError(f"{text!r} is not an id: ids are whole numbers from 1 to {MAX_ID}")


class IdConverter:
    """`<id:...>` in a URL: an object id the database can hold; anything else is a 404
    (Django's `<int:...>` hands any number of digits to the view)."""

    regex = "[0-9]+"

    def to_python(self, value):
        return parse_id(value)

    def to_url(self, value):
        return str(value)
