"""JSON pointers (RFC 6901) with the portal's one extension: in a list of objects, a
segment that is not a number selects the item whose key field equals it, so a stack
output is reachable as /Outputs/ServiceDiscoveryArn/OutputValue as well as /Outputs/3/OutputValue.
"""

import functools

from jsonpointer import JsonPointer, JsonPointerException, escape, unescape

# Fields that name the items of AWS lists: stack outputs and parameters, tags, env vars.
KEY_FIELDS = ("OutputKey", "ParameterKey", "Key", "Name", "name", "ExportName", "Id")


class Missing(LookupError):
    """The pointer does not lead to a value in this document (yet)."""


def split(pointer):
    """'/a/b~1c' -> ['a', 'b/c']; raises ValueError for a malformed pointer."""
    if pointer == "":
        return []
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer: it must start with '/'")
    return list(_parts(pointer))


@functools.lru_cache(maxsize=65536)  # the same few thousand pointers are split over and over
def _parts(pointer):
    try:
        return tuple(JsonPointer(pointer).parts)
    except JsonPointerException as exc:
        raise ValueError(f"{pointer!r} is not a valid JSON pointer: {exc}") from None


def join(parts):
    return "".join("/" + escape(str(p)) for p in parts)


def child(pointer, key):
    return f"{pointer}/{escape(str(key))}"


def _select(node, part):
    if isinstance(node, dict):
        if part in node:
            return node[part]
        raise Missing(part)
    if isinstance(node, list):
        if part.isdigit():
            index = int(part)
            if index < len(node):
                return node[index]
            raise Missing(part)
        for item in node:
            if isinstance(item, dict) and any(item.get(f) == part for f in KEY_FIELDS):
                return item
        raise Missing(part)
    raise Missing(part)


def by_index(doc, pointer):
    """`pointer` with each segment that selects a list item by key written as the item's
    index in `doc`, as far as `doc` goes: pending values are recorded by index, so this is
    the form to compare with them."""
    parts = split(pointer)
    node = doc
    for i, part in enumerate(parts):
        if isinstance(node, list) and not part.isdigit():
            index = next(
                (
                    j
                    for j, item in enumerate(node)
                    if isinstance(item, dict) and any(item.get(f) == part for f in KEY_FIELDS)
                ),
                None,
            )
            if index is None:
                break
            parts[i] = str(index)
        try:
            node = _select(node, parts[i])
        except Missing:
            break
    return join(parts)


def resolve(doc, pointer):
    node = doc
    for part in split(pointer):
        node = _select(node, part)
    return node


def set_value(doc, parts, value):
    """Set doc[parts] = value in place, creating dicts on the way; lists are indexed."""
    node = doc
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            node = node[int(part)]
            continue
        if part not in node or not isinstance(node[part], dict | list):
            node[part] = [] if nxt.isdigit() else {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        index = int(last)
        if index == len(node):
            node.append(value)
        else:
            node[index] = value
    else:
        node[last] = value


def delete_value(doc, parts):
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        del node[int(parts[-1])]
    else:
        node.pop(parts[-1], None)


def is_prefix(prefix, pointer):
    return pointer == prefix or pointer.startswith(prefix + "/")


# --- Key paths: list items named by their key, as people read them ----------------------------


def item_key(items, index):
    """The key that picks out items[index] alone (what `resolve` finds again), or None: the
    item has no key field, its key is a number (read as an index), or another item answers
    to the same key."""
    item = items[index]
    if not isinstance(item, dict):
        return None
    for field in KEY_FIELDS:
        key = item.get(field)
        if isinstance(key, str) and key and not key.isdigit():
            answering = [i for i in items if isinstance(i, dict) and any(i.get(f) == key for f in KEY_FIELDS)]
            return key if len(answering) == 1 and answering[0] is item else None
    return None


def key_path(pointer, *documents):
    """`pointer` with each list index that names a keyed item replaced by the item's key:
    /ContainerDefinitions/0/Environment/2/Value -> /ContainerDefinitions/web/Environment/API_URL/Value.

    An index stays where the item has no key, or where the documents (the two sides of a
    change) hold different items at it; so the key path reads the same value as the pointer
    in each document that has it."""
    nodes, out = list(documents), []
    for part in split(pointer):
        keys = {
            item_key(node, int(part))
            for node in nodes
            if isinstance(node, list) and part.isdigit() and int(part) < len(node)
        }
        out.append(keys.pop() if len(keys) == 1 and None not in keys else part)
        nodes = [_child_or_none(node, part) for node in nodes]
    return join(out)


def find_item(items, key):
    """The index of the item `key` selects in the list `items` (as `resolve` reads it), or None."""
    try:
        found = _select(items, key)
    except Missing:
        return None
    return next(i for i, item in enumerate(items) if item is found)


def index_path(doc, pointer):
    """The reverse of key_path: each key segment that selects a list item in `doc` becomes
    the item's index. Segments past what `doc` holds stay as they are."""
    node, out = doc, []
    for part in split(pointer):
        if isinstance(node, list) and not part.isdigit():
            index = find_item(node, part)
            part = part if index is None else str(index)
        out.append(part)
        node = _child_or_none(node, part)
    return join(out)


def _child_or_none(node, part):
    try:
        return _select(node, part)
    except Missing:
        return None


__all__ = [
    "Missing",
    "split",
    "join",
    "child",
    "resolve",
    "by_index",
    "set_value",
    "delete_value",
    "is_prefix",
    "item_key",
    "find_item",
    "key_path",
    "index_path",
    "escape",
    "unescape",
]
