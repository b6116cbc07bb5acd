"""What a subscription is: the one definition the engine, the schema checks, the spec
files, string templates and diffs all use.

A subscription stands in for a value anywhere in a component's properties:

    {"$source": {"component": NAME, "path": POINTER}}

Any object with a "$source" key is a subscription, well formed or not: it is one value,
never looked inside. It is well formed when "$source" is its only key, and its body has
exactly `component` (a non-empty name) and `path` (a JSON pointer rooted at /domain, the
producer's desired properties, /resource_value, what AWS reported, or /si, its name, type
and id).

This module needs no database and no Django setup.
"""

import functools

from . import pointers

SOURCE_KEY = "$source"
ROOTS = ("domain", "resource_value", "si")
SHAPE = '{"$source": {"component": NAME, "path": POINTER}}'
ROOTS_IN_WORDS = "/domain, /resource_value or /si"


def is_subscription(value):
    return isinstance(value, dict) and SOURCE_KEY in value


def shape_error(value):
    """Why the subscription `value` is malformed, in plain words, or None when it is not."""
    others = [k for k in value if k != SOURCE_KEY]
    if others:
        return f"a subscription holds only $source; remove {', '.join(map(str, others))}"
    body = value[SOURCE_KEY]
    if not isinstance(body, dict) or set(body) != {"component", "path"}:
        return f"a subscription must read {SHAPE}"
    if not isinstance(body["component"], str) or not body["component"]:
        return "the subscription's component must be a name"
    path = body["path"]
    if not isinstance(path, str) or not path.startswith("/"):
        return f"the subscription's path {path!r} is not a JSON pointer: it must start with {ROOTS_IN_WORDS}"
    return _path_error(path)


@functools.lru_cache(maxsize=65536)
def _path_error(path):
    try:
        parts = pointers.split(path)
    except ValueError as exc:
        return f"the subscription's path {exc}"
    if parts[0] not in ROOTS:
        return f"the subscription's path {path!r} must start with {ROOTS_IN_WORDS}"
    return None


def find(document, at=""):
    """[(pointer, subscription), ...] for every subscription in `document`, in document order."""
    found = []

    def walk(node, parts):
        if isinstance(node, dict):
            if SOURCE_KEY in node:
                found.append((at + "".join("/" + pointers.escape(p) for p in parts), node))
                return
            items = node.items()
        else:
            items = enumerate(node)
        for key, value in items:
            if isinstance(value, dict | list):  # a pointer is written only for what is found
                walk(value, (*parts, str(key)))

    if isinstance(document, dict | list):
        walk(document, ())
    return found
