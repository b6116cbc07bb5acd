"""What the portal accepts from a user, wherever it comes from (a page, a command, a spec
file): component names, JSON documents and object ids.

Each rule lives here once; the entry points call it before anything is parsed deeper,
walked or saved. This module needs no database and no Django setup.
"""

import bisect
import json
import re
import unicodedata

import yaml

from . import pointers
from .errors import ValidationError

MAX_NAME = 255
# Letters, digits, "-", "_" and "." (a CloudFormation logical id widened with the usual
# separators), starting with a letter or digit: every such name stands in a URL as it is.
COMPONENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Characters that make a text read differently from what it holds.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

MAX_JSON_DEPTH = 64
_OPENING = b"[{"
_ALL_BUT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# A JSON string (skipped whole) or a bracket, to find the line of the one too deep.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}

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


def _deepest(text):
    """How deep the brackets of JSON text nest, strings skipped: C-speed string operations
    leave only the brackets to count."""
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    outside_strings = "".join(unescaped.split('"')[::2])
    brackets = outside_strings.encode("utf-8", "surrogatepass").translate(None, _ALL_BUT_BRACKETS)
    depth = deepest = 0
    for bracket in brackets:
        depth += 1 if bracket in _OPENING else -1
        deepest = max(deepest, depth)
    return deepest


def check_json_text(text, origin="the JSON"):
    """Refuse JSON text nested deeper than MAX_JSON_DEPTH, before a parser recurses into it."""
    if _deepest(text) <= MAX_JSON_DEPTH:
        return
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        depth += _STEP.get(token.group(), 0)
        if depth > MAX_JSON_DEPTH:
            line = text.count("\n", 0, token.start()) + 1
            raise _too_deep(origin, f" (line {line})")


def check_yaml_events(events, origin="the YAML"):
    """Refuse a YAML event stream nested deeper than MAX_JSON_DEPTH, before it is composed."""
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


def json_value_errors(value):
    """[{path, message}] for what a JSON value may not hold: nesting deeper than
    MAX_JSON_DEPTH and lone surrogates (an escape like \\ud800 that is no character, and
    that no database or page can store)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
        if _deepest(text) <= MAX_JSON_DEPTH and not _has_lone_surrogate(text):
            return []  # the common case, answered at C speed
    except (RecursionError, TypeError, ValueError):
        pass  # too deep for the encoder, or not JSON: the walk below says where
    return _walk(value)


def _walk(value):
    """json_value_errors the slow way, with each problem's path; no recursion."""
    errors = []
    stack = [(value, "", 1)]
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


# --- Size limits: no document can make the server work for long ---------------------------

MAX_DOCUMENT_BYTES = 1_000_000  # one component's properties, as compact JSON
MAX_STRING_LENGTH = 64 * 1024  # characters in one string (key or value)


def check_document(doc, what="properties"):
    """Raise ValidationError when `doc` is past a limit."""
    _check_strings(doc, "")
    size = len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_DOCUMENT_BYTES:
        raise ValidationError(
            f"{what} are {size:,} bytes of JSON; the limit is {MAX_DOCUMENT_BYTES:,}",
            errors=[{"path": "/", "message": f"larger than {MAX_DOCUMENT_BYTES:,} bytes"}],
        )


def _check_strings(doc, path):
    stack = [(doc, path)]  # not recursive: the nesting depth is limited where JSON is parsed
    while stack:
        value, at = stack.pop()
        if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
            message = f"a string of {len(value):,} characters; the limit is {MAX_STRING_LENGTH:,}"
            raise ValidationError(f"{at or '/'}: {message}", errors=[{"path": at or "/", "message": message}])
        if isinstance(value, dict):
            stack.extend((key, f"{at}/{key}") for key in value)
            stack.extend((item, f"{at}/{key}") for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, f"{at}/{i}") for i, item in enumerate(value))


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def json_lines(text):
    """{pointer: line} of where each value of JSON text starts (1-based, as a textarea
    numbers its lines), so that an error found in the parsed value can name its line.
    {} for text that does not parse; a repeated key has the line of its last value."""
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    decoder = json.JSONDecoder()
    lines = {}

    def skip(i):
        return _WHITESPACE.match(text, i).end()

    def value(i, at):
        i = skip(i)
        lines[at] = bisect.bisect_right(newlines, i - 1) + 1
        opening = text[i]
        if opening not in "[{":
            return decoder.raw_decode(text, i)[1]
        closing, index = ("}", None) if opening == "{" else ("]", 0)
        i = skip(i + 1)
        if text[i] == closing:
            return i + 1
        while True:
            if index is None:
                key, i = json.decoder.scanstring(text, skip(i) + 1)
                i = skip(i) + 1  # the colon
                i = skip(value(i, pointers.child(at, key)))
            else:
                i = skip(value(i, pointers.child(at, index)))
                index += 1
            if text[i] == closing:
                return i + 1
            i += 1  # the comma

    try:
        check_json_text(text)
        value(0, "")
    except (ValueError, IndexError, ValidationError):
        return {}
    return lines
