"""The paths a subscription picker offers, deep and by key, each with a glimpse of the
value there: what a producer's subscription can read, where a consumer's can go.

The documents given here are already masked (or, in the editor, have their secrets
replaced by UNCHANGED): this module shows what it is given. No database, no Django.
"""

import json

from . import pointers, subscriptions

MAX_PATHS = 400
PREVIEW_LENGTH = 60


def preview(value, limit=PREVIEW_LENGTH):
    """A one-line glimpse of a JSON value for a picker's option."""
    if subscriptions.is_subscription(value):
        body = value[subscriptions.SOURCE_KEY]
        if isinstance(body, dict):
            return f"⇐ {body.get('component')}{body.get('path') or ''}"
        return "⇐ (a subscription)"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def walk(document, prefix="", key_paths=True):
    """[(key path, value)] of every value inside `document`, in document order, list items
    by key where they have one (pointers.item_key; by index with key_paths=False). A
    subscription is one value."""
    found = []

    def visit(node, at):
        if len(found) >= MAX_PATHS:
            return
        if isinstance(node, dict) and not subscriptions.is_subscription(node):
            children = [(pointers.child(at, k), v) for k, v in node.items()]
        elif isinstance(node, list):
            children = [
                (pointers.child(at, (key_paths and pointers.item_key(node, i)) or i), v)
                for i, v in enumerate(node)
            ]
        else:
            return
        for path, value in children:
            if len(found) >= MAX_PATHS:
                return
            found.append((path, value))
            visit(value, path)

    visit(document, prefix)
    return found


def options(document, prefix="", known=()):
    """[(path, preview)] for a datalist: every path inside `document` under `prefix`, and the
    `known` paths (a schema's attributes) it does not hold yet, marked as such."""
    out = {path: preview(value) for path, value in walk(document or {}, prefix)}
    for path in known:
        out.setdefault(path, "not known yet")
    return list(out.items())[:MAX_PATHS]
