"""Forms of the portal's pages. They parse and re-display input; the rules are the
engine's (portal.changesets, portal.approvals, ...), whose errors are attached back to
the field they name."""

import json

from django import forms

from . import graph, inputs, paths, pointers, rows
from .errors import ValidationError
from .models import ChangeSetStatus
from .secrets import UNCHANGED, hide_secrets, restore_secrets

PROP = "p__"  # prefix of the property fields
SECRET_HELP = f"A secret: {UNCHANGED} keeps the stored value; type a new value to change it."


class ChangeSetCreateForm(forms.Form):
    name = forms.CharField(
        max_length=200, widget=forms.TextInput(attrs={"placeholder": "e.g. open-port-3000-for-api"})
    )
    problem = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    solution = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class DescriptionForm(forms.Form):
    name = forms.CharField(max_length=200)
    problem = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    solution = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ChangeSetFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("active", "Active"), ("", "All"), *ChangeSetStatus.choices]
    )


# --- The component editor ---------------------------------------------------------------------

MAX_NEW_SUBSCRIPTIONS = 50


def property_kind(type_schema, name):
    """'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'json' for a top-level property."""
    node = type_schema.subschema(f"/{pointers.join([name])[1:]}") if type_schema else None
    return rows.value_kind(node)


class JSONField(forms.CharField):
    """A JSON document in a textarea; empty means "not set". The text is parsed as typed
    (never stripped), so the line and column of an error are those the textarea shows."""

    widget = forms.Textarea

    def __init__(self, **kwargs):
        super().__init__(strip=False, **kwargs)
        self.widget.attrs.update({"class": "json-text", "spellcheck": "false", "wrap": "off"})

    def to_python(self, value):
        text = value or ""
        if not text.strip():
            return None
        try:
            inputs.check_json_text(text, "this JSON")
            value = json.loads(text)
            inputs.check_json_value(value, "this JSON")
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        except ValidationError as exc:
            raise forms.ValidationError(exc.message) from None
        return value


def _json_text(value):
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)


class SubscriptionRow:
    """One $source row of the editor: where it goes (target) and what it reads."""

    def __init__(self, index, target, component, path, removed=False, shown_target=None):
        self.index, self.target, self.component, self.path, self.removed = (
            index,
            target,
            component,
            path,
            removed,
        )
        self.shown_target = shown_target or target
        self.errors = []

    @property
    def top_level(self):
        return self.target.count("/") == 1

    @property
    def top_property(self):
        """The top-level property the subscription sits in."""
        return pointers.split(self.target)[0] if self.target.startswith("/") else self.target

    @property
    def field(self):
        return self.target[1:] if self.top_level else None

    def source(self):
        return {graph.SOURCE_KEY: {"component": self.component, "path": self.path}}


class NewSubscription:
    """A subscription the editor adds when it saves: where it goes (a path, list items by
    key or by index) and what it reads."""

    def __init__(self, index, target="", component="", path=""):
        self.index, self.target, self.component, self.path = index, target, component, path
        self.errors = []
        self.placed = ""  # the index pointer it was set at

    @property
    def is_blank(self):
        return not (self.target or self.component or self.path)

    def source(self):
        return {graph.SOURCE_KEY: {"component": self.component, "path": self.path}}


class ComponentEditorForm(forms.Form):
    """Properties as fields generated from the type schema where it is simple (top-level
    strings, numbers, booleans, enums), lists of keyed objects (environment variables,
    tags, port mappings, ...) as rows (portal.rows), validated JSON for the rest; the
    component's subscriptions, and a picker that adds any number of them on save.

    mode="json" edits the whole document in one textarea instead. Secrets are shown as
    UNCHANGED, never in the clear; an UNCHANGED sent back keeps the stored value.
    """

    def __init__(
        self,
        type_schema,
        properties=None,
        *,
        is_new,
        can_replace=False,
        replace=False,
        mode="fields",
        data=None,
    ):
        super().__init__(data=data)
        self.type_schema, self.is_new, self.mode = type_schema, is_new, mode
        self.stored = properties or {}
        self.write_only = list(type_schema.write_only) if type_schema else []
        properties = hide_secrets(self.stored, self.write_only)
        self.shown = properties
        self.submitted = None  # the document the input made, once properties() ran
        if is_new:
            self.fields["name"] = forms.CharField(max_length=255, label="Name")
            self.order_fields(["name"])
        if can_replace:
            self.fields["replace"] = forms.BooleanField(
                required=False, initial=replace, label="Replace: delete and recreate the resource"
            )
        self.new_subscriptions = self._new_subscriptions(data)
        if mode == "json":
            self.tables = []
            self.subscriptions = self._subscriptions(properties, data)
            self.fields["document"] = JSONField(
                required=False, initial=_json_text(properties), label="Properties (JSON)"
            )
            if properties != self.stored:
                self.fields["document"].help_text = SECRET_HELP
            self.property_names = []
            return
        found = rows.find_tables(type_schema, properties)
        self.tables, self.table_problem = self._tables(found, data)
        self.subscriptions = self._subscriptions(properties, data, [t.pointer for t in found if t.present])
        subscribed = {s.field for s in self.subscriptions if s.top_level}
        as_rows = {t.name for t in found if t.top_level}
        rest = rows.cut(properties, found)
        names = list(type_schema.property_names) if type_schema else []
        read_only = {p[1:] for p in (type_schema.read_only if type_schema else []) if p.count("/") == 1}
        names = [n for n in names if n not in read_only or n in properties]
        names += sorted(n for n in properties if n not in names)
        self.property_names = [n for n in names if n not in subscribed and n not in as_rows]
        self.subscribed_fields = subscribed
        required = set(type_schema.required if type_schema else [])
        for name in self.property_names:
            field = self._field(name, rest.get(name), name in required)
            inside = [t.name + " of " + t.owner for t in found if t.present and t.at.startswith(f"/{name}/")]
            if inside:
                field.help_text = " ".join(
                    [field.help_text, f"Edited as rows below: {', '.join(inside)}."]
                ).strip()
            self.fields[PROP + name] = field

    def _tables(self, found, data):
        if data is None:
            return found, None
        try:
            return [rows.read_posted(table, t, data) for t, table in enumerate(found)], None
        except ValueError as exc:
            return found, str(exc)

    def _field(self, name, value, required):
        kind = (
            property_kind(self.type_schema, name)
            if name in (self.type_schema.property_names if self.type_schema else [])
            else "json"
        )
        if kind in ("string", "integer", "number", "boolean", "enum") and isinstance(value, dict | list):
            kind = "json"
        if kind == "string":
            text = value if isinstance(value, str) else ("" if value is None else str(value))
            long = "\n" in text or len(text) > 100
            widget = forms.Textarea(attrs={"rows": 6}) if long else forms.TextInput
            field = forms.CharField(required=False, initial=text, widget=widget, strip=False)
        elif kind == "integer":
            field = forms.IntegerField(required=False, initial=value)
        elif kind == "number":
            field = forms.FloatField(required=False, initial=value)
        elif kind == "boolean":
            field = forms.TypedChoiceField(
                required=False,
                choices=[("", "— not set —"), ("true", "true"), ("false", "false")],
                coerce=lambda v: v == "true",
                empty_value=None,
                initial="" if value is None else ("true" if value else "false"),
            )
        elif kind == "enum":
            options = self.type_schema.subschema(f"/{name}")["enum"]
            self._enum_values = getattr(self, "_enum_values", {})
            self._enum_values[name] = {str(o): o for o in options}
            field = forms.ChoiceField(
                required=False,
                choices=[("", "— not set —"), *((str(o), str(o)) for o in options)],
                initial="" if value is None else str(value),
            )
        else:
            field = JSONField(required=False, initial=_json_text(value))
            field.widget.attrs["rows"] = min(14, max(2, _json_text(value).count("\n") + 2))
        field.kind, field.property = kind, name
        if value == UNCHANGED or UNCHANGED in _json_text(value):
            field.help_text = SECRET_HELP
        field.required_by_schema = required
        field.description = self._description(name)
        field.label = name
        return field

    def _description(self, name):
        node = self.type_schema.subschema(pointers.join([name])) if self.type_schema else None
        return (node.get("description") or "") if isinstance(node, dict) else ""

    def _subscriptions(self, properties, data, in_rows=()):
        """The subscriptions shown in the list: all but those in a table's cells (the
        cells show them)."""
        if data is None:
            return [
                SubscriptionRow(
                    i, s.target, s.component, s.path, shown_target=pointers.key_path(s.target, properties)
                )
                for i, s in enumerate(graph.find_sources(properties))
                if not any(pointers.is_prefix(p, s.target) for p in in_rows)
            ]
        removed = set(data.getlist("sub_remove"))
        posted = zip(
            data.getlist("sub_target"), data.getlist("sub_component"), data.getlist("sub_path"), strict=False
        )
        return [
            SubscriptionRow(i, t, c, p, str(i) in removed, shown_target=_key_path(t, properties))
            for i, (t, c, p) in enumerate(posted)
        ]

    def _new_subscriptions(self, data):
        if data is None:
            return [NewSubscription(0)]
        posted = list(
            zip(
                data.getlist("new_target"),
                data.getlist("new_component"),
                data.getlist("new_path"),
                strict=False,
            )
        )
        subs = [
            NewSubscription(i, t.strip(), c.strip(), p.strip())
            for i, (t, c, p) in enumerate(posted[: MAX_NEW_SUBSCRIPTIONS + 1])
        ]
        subs = [s for s in subs if not s.is_blank] or [NewSubscription(0)]
        if len(subs) > MAX_NEW_SUBSCRIPTIONS:
            subs[-1].errors.append(
                f"at most {MAX_NEW_SUBSCRIPTIONS} new subscriptions at a time: save, then add more"
            )
        return subs

    # --- what the page shows beside the fields

    def target_paths(self):
        """[(path, preview)] a new subscription can go to: the document's values, deep and
        by key, and the schema's top-level properties."""
        names = [
            f"/{pointers.join([n])[1:]}"
            for n in (self.type_schema.property_names if self.type_schema else [])
        ]
        return paths.options(self.shown, "", names)

    def _table_view(self, t, table):
        """What _rows.html shows of table t: its rows (and one blank row to fill), each
        cell with its input's name and its key path for the subscription picker."""

        def row_view(row, number, blank=False):
            cells = [
                {
                    "j": j,
                    "column": column,
                    "cell": cell,
                    "name": f"rows-{t}-{row.id}-{j}",
                    "path": table.cell_path(row, column) if j and not blank else "",
                }
                for j, (column, cell) in enumerate(zip(table.columns, row.cells, strict=True))
            ]
            return {
                "id": row.id,
                "number": number,
                "blank": blank,
                "removed": row.removed,
                "errors": row.errors,
                "cells": cells,
            }

        views = [row_view(row, n + 1) for n, row in enumerate(table.rows) if not row.is_blank or row.errors]
        blank = table.blank_row()
        views.append(row_view(blank, len(views) + 1, blank=True))
        template = table.blank_row("__ID__")
        return {
            "t": t,
            "table": table,
            "rows": views,
            "template_row": row_view(template, "", blank=True),
            "description": rows.description_at(self.type_schema, table.pointer),
        }

    def present_tables(self):
        """(index, table) of the lists shown open: those the document holds or the input filled."""
        return [
            self._table_view(t, table)
            for t, table in enumerate(self.tables)
            if table.present or any(not r.is_blank for r in table.rows)
        ]

    def absent_tables(self):
        shown = {view["t"] for view in self.present_tables()}
        return [self._table_view(t, table) for t, table in enumerate(self.tables) if t not in shown]

    # --- reading the input back

    def property_fields(self):
        """Simple fields first (they sit two by two), JSON documents after."""
        fields = [self[PROP + n] for n in self.property_names]
        return sorted(fields, key=lambda f: f.field.kind == "json")

    def set_fields(self):
        """The fields shown open: required by the schema, holding a value, or in error."""
        return [
            f
            for f in self.property_fields()
            if f.field.required_by_schema or f.value() not in (None, "") or f.errors
        ]

    def other_fields(self):
        shown = {f.name for f in self.set_fields()}
        return [f for f in self.property_fields() if f.name not in shown]

    def clean(self):
        data = super().clean()
        if self.mode != "json":
            if self.table_problem:
                raise forms.ValidationError(self.table_problem)
            if None in [table.items() for table in self.tables]:  # every table says what is wrong
                raise forms.ValidationError("Some rows need fixing: see the lists below.")
        return data

    def properties(self):
        """The properties document the input describes (call after is_valid())."""
        data = self.cleaned_data
        if self.mode == "json":
            props = data.get("document")
            props = {} if props is None else props
            if not isinstance(props, dict):
                self.add_error("document", "the properties must be a JSON object ({ … })")
                return None
        else:
            props = {}
            for name in self.property_names:
                value = data.get(PROP + name)
                if value is None or value == "":
                    continue
                if name in getattr(self, "_enum_values", {}):
                    value = self._enum_values[name].get(value, value)
                if (
                    isinstance(value, float)
                    and value.is_integer()
                    and self.fields[PROP + name].kind == "integer"
                ):
                    value = int(value)
                props[name] = value
            for s in self.subscriptions:
                if s.top_level and not s.removed:
                    props[s.field] = s.source()
            if not self._place_tables(props):
                return None
        for s in self.subscriptions:
            if (
                s.removed
                and (self.mode == "json" or not s.top_level)
                and graph.is_source(_at(props, s.target))
            ):
                pointers.delete_value(props, pointers.split(s.target))
        self.submitted = props
        try:
            props = restore_secrets(props, self.stored, self.write_only)
        except ValidationError as exc:
            self.add_engine_errors(exc)
            return None
        props = self._add_new_subscriptions(props)
        self.submitted = props
        return props

    def _place_tables(self, props):
        for table in self.tables:
            problem = rows.place(props, table)
            if problem:
                table.errors.append(problem)
        if any(table.errors for table in self.tables):
            self.add_error(None, "Some rows have nowhere to go: see the lists below.")
            return False
        for table in self.tables:
            table.placed_at = rows.placed_pointer(props, table)
        return True

    def _add_new_subscriptions(self, props):
        targets = {}
        for s in self.new_subscriptions:
            if s.is_blank:
                continue
            missing = [
                label
                for value, label in (
                    (s.target, "the property it goes to"),
                    (s.component, "a component"),
                    (s.path, "a path"),
                )
                if not value
            ]
            if missing:
                s.errors.append(f"choose {' and '.join(missing)} to subscribe")
                continue
            target = s.target if s.target.startswith("/") else "/" + s.target
            try:
                s.placed = rows.set_at(props, target, s.source(), self.type_schema)
            except ValueError as exc:
                s.errors.append(f"{target}: {exc}")
                continue
            if s.placed in targets:
                s.errors.append(f"{target}: the new subscription above goes there too; keep one")
            targets[s.placed] = s
        if any(s.errors for s in self.new_subscriptions):
            self.add_error(None, "A new subscription needs fixing: see the subscriptions below.")
            return None
        return props

    def replace_value(self):
        return self.cleaned_data.get("replace") if "replace" in self.fields else None

    # --- engine errors back onto the fields

    def add_engine_errors(self, exc):
        """Attach a portal ValidationError's {path, message} items to the fields they name."""
        errors = exc.errors or [{"path": "", "message": exc.message}]
        for error in errors:
            path, message = error.get("path") or "", error["message"]
            self._attach(path, message)

    def _attach(self, path, message):
        shown = _key_path(path, self.submitted) if path else path
        for s in self.subscriptions:
            if pointers.is_prefix(s.target, path):
                s.errors.append(message)
                return
        for s in self.new_subscriptions:
            if s.placed and pointers.is_prefix(s.placed, path):
                s.errors.append(message)
                return
        for table in self.tables:
            placed = getattr(table, "placed_at", None)
            if placed and pointers.is_prefix(placed, path):
                rest = pointers.split(path[len(placed) :]) if path != placed else []
                if rest and rest[0].isdigit() and int(rest[0]) < len(table.placed):
                    inner = pointers.join(rest[1:])
                    table.placed[int(rest[0])].errors.append(f"{inner[1:] + ': ' if inner else ''}{message}")
                else:
                    table.errors.append(f"{shown}: {message}")
                self.add_error(None, f"{shown}: {message}")
                return
        parts = path.split("/")[1:] if path.startswith("/") else []
        if self.mode == "json":
            line = _line(self.data.get("document"), path)
            self.add_error("document", f"{shown or '/'}{line}: {message}")
        elif parts and PROP + pointers.unescape(parts[0]) in self.fields:
            name = PROP + pointers.unescape(parts[0])
            rest = "/" + shown.split("/", 2)[2] if shown.count("/") > 1 else ""
            line = _line(self.data.get(name), "/" + path.split("/", 2)[2] if path.count("/") > 1 else "")
            self.add_error(name, f"{rest}{line}: {message}" if rest or line else message)
        else:
            self.add_error(None, f"{shown + ': ' if shown else ''}{message}")


def _line(text, pointer):
    """ " (line N)" where JSON text holds the value at `pointer` (or its nearest parent)."""
    lines = inputs.json_lines(text) if isinstance(text, str) and text.strip()[:1] in ("{", "[") else {}
    while pointer and pointer not in lines:
        pointer = pointer.rsplit("/", 1)[0]
    return f" (line {lines[pointer]})" if pointer in lines else ""


def _key_path(pointer, document):
    try:
        return pointers.key_path(pointer, document) if document is not None else pointer
    except ValueError:
        return pointer


def _at(doc, pointer):
    try:
        return pointers.resolve(doc, pointer)
    except (pointers.Missing, ValueError):
        return None
