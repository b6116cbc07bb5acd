"""Path-level differences between two property documents, and the three-way merge a
rebase needs. A subscription ({"$source": ...}) is one value, never looked inside.
"""

import difflib
import json
from copy import deepcopy
from dataclasses import dataclass

from . import pointers
from .subscriptions import is_subscription

ABSENT = object()


@dataclass(frozen=True)
class Change:
    path: str
    op: str  # added | modified | deleted
    old: object = None
    new: object = None

    def as_dict(self):
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new}


def json_copy(value):
    """A deep copy of a JSON value (dicts, lists, scalars): deepcopy's result, several
    times faster (no memo, no dispatch on types JSON does not have)."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


def _is_leaf(value):
    return not isinstance(value, dict | list) or is_subscription(value)


def changes(old, new, path="", by_key=False):
    """The smallest subtrees that differ, in document order.

    by_key=True (for people to read, never to apply): two lists whose items all have a key
    (pointers.item_key) in the same order are compared item by item of the same key, with
    key paths, so that one variable removed from an environment is one deletion, not a
    change at every index after it."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict) and not _is_leaf(old) and not _is_leaf(new):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            child = pointers.child(path, key)
            if key not in new:
                out.append(Change(child, "deleted", old[key], None))
            elif key not in old:
                out.append(Change(child, "added", None, new[key]))
            else:
                out.extend(changes(old[key], new[key], child, by_key))
        return out
    if by_key and isinstance(old, list) and isinstance(new, list):
        paired = _by_key(old, new, path)
        if paired is not None:
            return paired
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            child = pointers.child(path, i)
            if i >= len(new):
                out.append(Change(child, "deleted", old[i], None))
            elif i >= len(old):
                out.append(Change(child, "added", None, new[i]))
            else:
                out.extend(changes(old[i], new[i], child, by_key))
        return out
    return [Change(path, "modified", old, new)]


def _by_key(old, new, path):
    """changes() of two lists paired by their items' keys, or None when they cannot be."""
    old_keys = [pointers.item_key(old, i) for i in range(len(old))]
    new_keys = [pointers.item_key(new, i) for i in range(len(new))]
    if None in old_keys or None in new_keys:
        return None
    new_at = {k: i for i, k in enumerate(new_keys)}
    kept = [k for k in old_keys if k in new_at]
    if kept != [k for k in new_keys if k in set(old_keys)]:
        return None  # reordered: the order is part of the change, shown by index
    out = []
    for i, key in enumerate(old_keys):
        child = pointers.child(path, key)
        if key in new_at:
            out.extend(changes(old[i], new[new_at[key]], child, by_key=True))
        else:
            out.append(Change(child, "deleted", old[i], None))
    old_set = set(old_keys)
    out += [
        Change(pointers.child(path, k), "added", None, new[i])
        for i, k in enumerate(new_keys)
        if k not in old_set
    ]
    return out


def value_at(doc, path):
    try:
        return pointers.resolve(doc, path) if path else doc
    except pointers.Missing:
        return ABSENT


def _overlaps(a, b):
    return pointers.is_prefix(a, b) or pointers.is_prefix(b, a)


def apply_changes(doc, items):
    """Apply `items` (Change) to a copy of doc: sets in order, then deletes from the end."""
    doc = deepcopy(doc)
    sets = [c for c in items if c.op != "deleted"]
    deletes = [c for c in items if c.op == "deleted"]
    for c in sets:
        if c.path == "":
            doc = deepcopy(c.new)
        else:
            try:
                pointers.set_value(doc, pointers.split(c.path), deepcopy(c.new))
            except (IndexError, KeyError, ValueError, TypeError):
                continue
    for c in sorted(
        deletes, key=lambda c: [int(p) if p.isdigit() else -1 for p in pointers.split(c.path)], reverse=True
    ):
        try:
            pointers.delete_value(doc, pointers.split(c.path))
        except (IndexError, KeyError, ValueError, TypeError):
            continue
    return doc


def three_way(base, head, mine):
    """Merge HEAD's changes since `base` into `mine`.

    Returns (merged, conflicts); a conflict is {"path", "base", "head", "mine"} where
    both sides changed overlapping paths differently. `merged` keeps mine at conflicts.
    """
    theirs = changes(base, head)
    ours = changes(base, mine)
    lists = _merge_lists(base, head, mine, theirs, ours)
    theirs = [t for t in theirs if not any(pointers.is_prefix(at, t.path) for at in lists)]
    ours = [o for o in ours if not any(pointers.is_prefix(at, o.path) for at in lists)]
    conflict_paths = [at for at, items in lists.items() if items is None]
    clean = []
    for t in theirs:
        clashing = [o for o in ours if _overlaps(t.path, o.path)]
        if not clashing:
            clean.append(t)
            continue
        if all(value_at(head, o.path) == value_at(mine, o.path) for o in clashing) and value_at(
            head, t.path
        ) == value_at(mine, t.path):
            continue  # both sides made the same change
        shortest = min([t.path, *[o.path for o in clashing]], key=len)
        if shortest not in conflict_paths:
            conflict_paths.append(shortest)
    clean += [Change(at, "modified", None, items) for at, items in lists.items() if items is not None]
    merged = apply_changes(mine, clean)
    conflicts = []
    for path in conflict_paths:
        conflicts.append(
            {
                "path": path,
                "base": _jsonable(value_at(base, path)),
                "head": _jsonable(value_at(head, path)),
                "mine": _jsonable(value_at(mine, path)),
                "head_absent": value_at(head, path) is ABSENT,
                "mine_absent": value_at(mine, path) is ABSENT,
            }
        )
    return merged, conflicts


def _list_pointers(doc, at=""):
    """Pointers of the lists in `doc`, outer ones first (a subscription is one value)."""
    if isinstance(doc, dict) and not is_subscription(doc):
        for key, value in doc.items():
            yield from _list_pointers(value, pointers.child(at, key))
    elif isinstance(doc, list):
        yield at
        for index, value in enumerate(doc):
            yield from _list_pointers(value, pointers.child(at, index))


def _merge_lists(base, head, mine, theirs, ours):
    """{pointer: merged items, or None for a conflict} for each list both sides changed
    where a side added or removed items. Their edits are index by index, and an index
    means another item once the other side has added or removed one before it: such a
    list is merged as a sequence of items (each side's runs of changed items, kept
    where they do not overlap), not path by path."""
    out = {}
    for at in _list_pointers(base):
        if any(pointers.is_prefix(done, at) for done in out):
            continue
        was, now_head, now_mine = value_at(base, at), value_at(head, at), value_at(mine, at)
        if not (isinstance(now_head, list) and isinstance(now_mine, list)):
            continue
        if len(now_head) == len(was) and len(now_mine) == len(was):
            continue  # the items stay where they are: merged path by path
        if any(pointers.is_prefix(at, t.path) for t in theirs) and any(
            pointers.is_prefix(at, o.path) for o in ours
        ):
            out[at] = _merge_items(was, now_head, now_mine)
    return out


def _runs(was, now):
    """(start, end, items): base's items [start:end) became `items`."""
    key = [json.dumps(v, sort_keys=True) for v in was], [json.dumps(v, sort_keys=True) for v in now]
    matcher = difflib.SequenceMatcher(None, *key, autojunk=False)
    return [(i1, i2, now[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _merge_items(was, now_head, now_mine):
    theirs, ours = _runs(was, now_head), _runs(was, now_mine)
    for a1, a2, x in theirs:
        for b1, b2, y in ours:
            if (a1, a2, x) == (b1, b2, y):
                continue  # both sides made the same change
            overlap = a1 < b2 and b1 < a2
            same_place = a1 == a2 == b1 == b2  # both insert at one place: which goes first?
            inside = (a1 == a2 and b1 < a1 < b2) or (b1 == b2 and a1 < b1 < a2)
            if overlap or same_place or inside:
                return None
    runs = theirs + [r for r in ours if r not in theirs]
    merged, at = [], 0
    for start, end, items in sorted(runs, key=lambda r: (r[0], r[1])):  # an insert before a run at its place
        merged += deepcopy(was[at:start]) + deepcopy(items)
        at = end
    return merged + deepcopy(was[at:])


def _jsonable(value):
    return None if value is ABSENT else value


def absent_in(doc, path):
    return value_at(doc, path) is ABSENT
