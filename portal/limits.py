"""Limits on the documents users send (component properties, spec files), so that no
input can make the server work for long: checked where documents enter, before anything
is saved, each with an error that says which limit and where."""

import json

from .errors import ValidationError

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
