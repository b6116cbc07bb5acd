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
    "escape",
    "unescape",
]
