"""Lists of keyed objects edited as rows: environment variables, tags, port mappings,
secrets, ulimits, ... one row per item, one column per property, each cell a literal or a
subscription.

Which lists are rows is the schema's word: an array whose items are objects with a key
property (a name pointers.KEY_FIELDS knows: Name, Key, ...) and only simple properties
(strings, numbers, booleans, enums). A list in a document is shown as rows only when each
of its items fits its columns, so that rows read back give the very document they came
from; anything else stays JSON.

A table is known by its key path (/ContainerDefinitions/web/Environment), so rows go
back to their container even when the JSON around them moved. The posted form of table t:

    rows-T-at        its key path          rows-T-present   "1" when the list existed
    rows-T-row       the ids of its rows   rows-T-ID-remove  the row is dropped
    rows-T-ID-J      cell J's text         rows-T-ID-J-component, rows-T-ID-J-path: a subscription
                                           rows-T-ID-J-unsubscribe: drop the cell's subscription

This module needs no database and no Django setup.
"""

import copy
import functools
import math
import re
from dataclasses import dataclass, field

from . import pointers, subscriptions
from .secrets import UNCHANGED

SIMPLE_KINDS = ("string", "integer", "number", "boolean")
MAX_COLUMNS = 8
MAX_ROWS = 500
MAX_TABLES = 100
# JSON's numbers, in ASCII digits (Python's int() and float() also take "1_000", "٣", "nan").
INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def value_kind(node):
    """'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'json' of a (dereferenced) schema node."""
    if not isinstance(node, dict):
        return "json"
    if isinstance(node.get("enum"), list) and node["enum"]:
        return "enum"
    kind = node.get("type")
    if isinstance(kind, list):
        kind = kind[0] if len(kind) == 1 else None
    return kind if kind in SIMPLE_KINDS else "json"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    options: tuple = ()
    required: bool = False
    description: str = ""

    def parse(self, text):
        """The JSON value a cell's text stands for; ValueError with the reason."""
        if self.kind == "integer":
            if not INTEGER.fullmatch(text.strip()):
                raise ValueError(f"{self.name} must be a whole number, not {text!r}")
            return int(text.strip())
        if self.kind == "number":
            if INTEGER.fullmatch(text.strip()):
                return int(text.strip())
            number = float(text.strip()) if NUMBER.fullmatch(text.strip()) else math.nan
            if not math.isfinite(number):
                raise ValueError(f"{self.name} must be a number, not {text!r}")
            return number
        if self.kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(f"{self.name} must be true or false")
            return text == "true"
        if self.kind == "enum":
            by_text = {str(o): o for o in self.options}
            if text not in by_text:
                raise ValueError(f"{self.name} must be one of {', '.join(by_text)}")
            return by_text[text]
        return text

    def fits(self, value):
        """Whether `value` reads back from a cell as itself."""
        if subscriptions.is_subscription(value):
            return subscriptions.shape_error(value) is None
        if self.kind == "string":
            return isinstance(value, str) and (value != "" or self.required)
        if self.kind == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind == "boolean":
            return isinstance(value, bool)
        return any(value == o and type(value) is type(o) for o in self.options)

    @property
    def choices(self):
        """The texts a select offers (enums and booleans)."""
        if self.kind == "boolean":
            return ["true", "false"]
        return [self.text(o) for o in self.options]

    def text(self, value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)


def _key_field(properties):
    return next((f for f in pointers.KEY_FIELDS if f in properties), None)


@functools.lru_cache(maxsize=2048)
def columns_for(type_schema, items_pointer):
    """The columns of the list whose items' schema pointer is `items_pointer` ("/Tags/*"),
    key first, or None when the list is not one of keyed, simple objects."""
    node = type_schema.subschema(items_pointer)
    properties = node.get("properties") if isinstance(node, dict) else None
    if not isinstance(properties, dict) or not properties or len(properties) > MAX_COLUMNS:
        return None
    key = _key_field(properties)
    if key is None:
        return None
    required = set(node.get("required") or [])
    columns = []
    for name in [key, *(n for n in properties if n != key)]:
        sub = type_schema.subschema(pointers.child(items_pointer, name))
        kind = value_kind(sub)
        if kind == "json":
            return None
        columns.append(
            Column(
                name,
                kind,
                tuple(sub["enum"]) if kind == "enum" else (),
                name in required,
                (sub.get("description") or "") if isinstance(sub, dict) else "",
            )
        )
    return tuple(columns)


def _schema_pointer(type_schema, parts):
    """The schema pointer of a document place: list items (by index or by key) as "*"."""
    out = []
    for part in parts:
        node = type_schema.subschema(pointers.join(out))
        is_list = isinstance(node, dict) and (node.get("type") == "array" or "items" in node)
        out.append("*" if is_list else part)
    return pointers.join(out)


def description_at(type_schema, pointer):
    """The schema's description of the value at a document pointer, or ""."""
    node = type_schema.subschema(_schema_pointer(type_schema, pointers.split(pointer)))
    return (node.get("description") or "") if isinstance(node, dict) else ""


def columns_at(type_schema, pointer):
    """The columns of the list at a document pointer (by index or by key), or None."""
    return columns_for(type_schema, _schema_pointer(type_schema, [*pointers.split(pointer), "*"]))


# --- Tables ----------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str = ""
    component: str = ""
    path: str = ""
    error: str = ""

    @property
    def is_subscription(self):
        return bool(self.component or self.path)

    @property
    def is_secret(self):
        return self.text == UNCHANGED


@dataclass
class Row:
    id: int
    cells: list
    removed: bool = False
    errors: list = field(default_factory=list)

    @property
    def is_blank(self):
        return not any(c.text or c.is_subscription for c in self.cells)

    @property
    def key(self):
        """The row's key (its first cell, a literal), or ""."""
        cell = self.cells[0]
        return "" if cell.is_subscription else cell.text


@dataclass
class Table:
    at: str  # key path of the list
    pointer: str  # where the shown document holds it (by index)
    columns: list
    rows: list
    present: bool
    errors: list = field(default_factory=list)
    placed: list = field(default_factory=list)  # the rows saved, in list order

    @property
    def name(self):
        return pointers.split(self.at)[-1]

    @property
    def top_level(self):
        return self.at.count("/") == 1

    @property
    def owner(self):
        """The key path of the object that holds the list ("" at the top)."""
        return self.at.rsplit("/", 1)[0]

    @property
    def next_id(self):
        return max((r.id for r in self.rows), default=-1) + 1

    def blank_row(self, row_id=None):
        return Row(self.next_id if row_id is None else row_id, [Cell() for _ in self.columns])

    def cell_path(self, row, column):
        """The key path of a row's cell, for the subscription picker ("" without a key)."""
        return pointers.child(pointers.child(self.at, row.key), column.name) if row.key else ""

    def items(self):
        """The list the rows describe; fills the rows' errors (and returns None) on bad input."""
        out, keys = [], {}
        self.placed = []
        for row in self.rows:
            row.errors = []
            for cell in row.cells:
                cell.error = ""
        for n, row in enumerate(r for r in self.rows if not r.removed and not r.is_blank):
            item = {}
            for column, cell in zip(self.columns, row.cells, strict=True):
                if cell.is_subscription:
                    item[column.name] = {
                        subscriptions.SOURCE_KEY: {"component": cell.component, "path": cell.path}
                    }
                    problem = subscriptions.shape_error(item[column.name])
                    if problem:
                        cell.error = problem
                elif cell.text != "" or column.required:
                    try:
                        item[column.name] = column.parse(cell.text)
                    except ValueError as exc:
                        cell.error = str(exc)
            key, first = row.key, self.columns[0].name
            if key and key in keys:
                row.errors.append(f"{first} {key} is already row {keys[key] + 1}'s: one row per {first}")
            elif key:
                keys[key] = n
            out.append(item)
            self.placed.append(row)
        bad = any(row.errors or any(c.error for c in row.cells) for row in self.rows)
        return None if bad else out


def _fits(items, columns):
    """Whether rows show `items` as they are: each item an object of the columns' values,
    no two with the same key."""
    names = {c.name: c for c in columns}
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and all(k in names and names[k].fits(v) for k, v in item.items())
        for item in items
    ):
        return False
    keys = [item.get(columns[0].name) for item in items if isinstance(item.get(columns[0].name), str)]
    return len(keys) == len(set(keys))


def _row(row_id, item, columns):
    cells = []
    for column in columns:
        value = item.get(column.name)
        if subscriptions.is_subscription(value):
            body = value[subscriptions.SOURCE_KEY]
            cells.append(Cell(component=body["component"], path=body["path"]))
        else:
            cells.append(Cell(text=column.text(value)))
    return Row(row_id, cells)


def find_tables(type_schema, document):
    """The tables of `document`: each list the schema makes rows whose items fit their
    columns, and each such list absent from an object the document holds (present=False),
    in document order."""
    tables = []

    def walk(value, parts):
        if isinstance(value, dict) and not subscriptions.is_subscription(value):
            node = type_schema.subschema(_schema_pointer(type_schema, parts))
            names = list((node or {}).get("properties") or {}) if isinstance(node, dict) else []
            for name in [*names, *(k for k in value if k not in names)]:
                child_parts = [*parts, name]
                columns = columns_at(type_schema, pointers.join(child_parts))
                if columns and (name not in value or _fits(value[name], columns)):
                    items = value.get(name) or []
                    tables.append(
                        Table(
                            pointers.key_path(pointers.join(child_parts), document),
                            pointers.join(child_parts),
                            columns,
                            [_row(i, item, columns) for i, item in enumerate(items)],
                            name in value,
                        )
                    )
                elif name in value:
                    walk(value[name], child_parts)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, [*parts, str(i)])

    if type_schema is not None and isinstance(document, dict):
        walk(document, [])
    return tables[:MAX_TABLES]


def cut(document, tables):
    """A copy of `document` without the lists the present tables show."""
    out = copy.deepcopy(document)
    for table in sorted((t for t in tables if t.present), key=lambda t: t.pointer, reverse=True):
        pointers.delete_value(out, pointers.split(table.pointer))
    return out


def read_posted(table, t, data):
    """`table` (as found in the stored document) with the rows posted for it as table t;
    `table` itself when nothing was posted for it (a client that does not edit rows keeps
    the list as it is). Raises ValueError when the form was made for another version of
    the document."""
    if f"rows-{t}-at" not in data:
        return table
    if data.get(f"rows-{t}-at") != table.at:
        raise ValueError(
            f"the rows of {table.at} were not sent back as they were shown: the component changed "
            "since this page was opened; reload it"
        )
    ids = data.getlist(f"rows-{t}-row")[: MAX_ROWS + 1]
    if len(ids) > MAX_ROWS:
        raise ValueError(f"{table.at} has more than {MAX_ROWS} rows")
    rows = []
    for row_id in dict.fromkeys(ids):
        if not row_id.isdigit():
            continue
        prefix = f"rows-{t}-{row_id}"
        cells = []
        for j in range(len(table.columns)):
            cell = Cell(data.get(f"{prefix}-{j}", ""))
            if not data.get(f"{prefix}-{j}-unsubscribe"):
                cell.component = data.get(f"{prefix}-{j}-component", "").strip()
                cell.path = data.get(f"{prefix}-{j}-path", "").strip()
            cells.append(cell)
        rows.append(Row(int(row_id), cells, removed=bool(data.get(f"{prefix}-remove"))))
    return Table(table.at, table.pointer, table.columns, rows, data.get(f"rows-{t}-present") == "1")


def place(document, table):
    """Put the table's list into `document` (in place) at its key path; the items come from
    table.items() (None when a row is bad). Returns an error message or None."""
    items = table.items()
    if items is None:
        return None  # the rows say what is wrong
    owner_path = table.owner
    try:
        owner = pointers.resolve(document, owner_path) if owner_path else document
    except (pointers.Missing, ValueError):
        owner = None
    if not isinstance(owner, dict):
        if not items and not table.present:
            return None
        return f"{owner_path} is no longer in the properties: the rows of {table.at} have nowhere to go"
    if table.name in owner:
        return f"{table.at} is edited as rows: remove {table.name} from the JSON above, or edit it there only"
    if items or table.present:
        owner[table.name] = items
    return None


def placed_pointer(document, table):
    """Where the table's list sits in `document` after `place`, by index."""
    return pointers.index_path(document, table.at)


# --- Setting a value at a key path -----------------------------------------------------------


def set_at(document, pointer, value, type_schema=None):
    """Set `value` at `pointer` (list items by index or by key) in `document`, in place,
    creating what is missing on the way as the schema says: a list where it wants a list,
    a new item {KEY: name} for a key a keyed list does not hold yet. Returns the index
    pointer set; raises ValueError when there is no such place."""
    parts = pointers.split(pointer)
    if not parts:
        raise ValueError("a subscription needs a property to go to")
    node, done = document, []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if part.isdigit():
                index = int(part)
                if index > len(node):
                    raise ValueError(
                        f"{pointers.join(done) or '/'} has {len(node)} items: there is no item {part}"
                    )
            else:
                found = pointers.find_item(node, part)
                if found is None:
                    key = _new_item_key(type_schema, done)
                    if key is None:
                        raise ValueError(f"{pointers.join(done)} holds no item {part}")
                    node.append({key: part})
                    found = len(node) - 1
                index = found
            done.append(str(index))
            if last:
                if index == len(node):
                    node.append(value)
                else:
                    node[index] = value
                break
            if index == len(node):
                node.append(_container_for(type_schema, [*done]))
            node = node[index]
        elif isinstance(node, dict):
            done.append(part)
            if last:
                node[part] = value
                break
            if node.get(part) is None:
                node[part] = _container_for(type_schema, done)
            node = node[part]
        if not isinstance(node, dict | list):
            raise ValueError(f"{pointers.join(done)} is a single value: nothing goes inside it")
    return pointers.join(done)


def _new_item_key(type_schema, list_parts):
    if type_schema is None:
        return None
    node = type_schema.subschema(_schema_pointer(type_schema, [*list_parts, "*"]))
    return _key_field((node or {}).get("properties") or {}) if isinstance(node, dict) else None


def _container_for(type_schema, parts):
    node = type_schema.subschema(_schema_pointer(type_schema, parts)) if type_schema else None
    is_list = isinstance(node, dict) and (node.get("type") == "array" or "items" in node)
    return [] if is_list else {}
