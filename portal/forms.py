"""Forms of the portal's pages. They parse and re-display input; the rules are the
engine's (portal.changesets, portal.approvals, ...), whose errors are attached back to
the field they name."""

import json

from django import forms

from . import graph, inputs, pointers
from .errors import ValidationError
from .models import ChangeSetStatus
from .secrets import UNCHANGED, hide_secrets, restore_secrets

SIMPLE_KINDS = ("string", "integer", "number", "boolean")
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


def property_kind(type_schema, name):
    """'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'json' for a top-level property."""
    node = type_schema.subschema(f"/{pointers.join([name])[1:]}") if type_schema else None
    if not isinstance(node, dict):
        return "json"
    if isinstance(node.get("enum"), list) and node["enum"]:
        return "enum"
    kind = node.get("type")
    if isinstance(kind, list):
        kind = kind[0] if len(kind) == 1 else None
    return kind if kind in SIMPLE_KINDS else "json"


class JSONField(forms.CharField):
    """A JSON document in a textarea; empty means "not set"."""

    widget = forms.Textarea

    def to_python(self, value):
        text = (value or "").strip()
        if not text:
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

    def __init__(self, index, target, component, path, removed=False):
        self.index, self.target, self.component, self.path, self.removed = (
            index,
            target,
            component,
            path,
            removed,
        )
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


class ComponentEditorForm(forms.Form):
    """Properties as fields generated from the type schema where it is simple (top-level
    strings, numbers, booleans, enums), as validated JSON where it is not, and the
    component's subscriptions with a picker to add one.

    mode="json" edits the whole document in one textarea instead. Secrets are shown as
    UNCHANGED, never in the clear; an UNCHANGED sent back keeps the stored value.
    """

    new_target = forms.CharField(required=False, label="Property path")
    new_component = forms.CharField(required=False, label="Component")
    new_path = forms.CharField(required=False, label="Path")

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
        if is_new:
            self.fields["name"] = forms.CharField(max_length=255, label="Name")
            self.order_fields(["name"])
        if can_replace:
            self.fields["replace"] = forms.BooleanField(
                required=False, initial=replace, label="Replace: delete and recreate the resource"
            )
        self.subscriptions = self._subscriptions(properties, data)
        subscribed = {s.field for s in self.subscriptions if s.top_level}
        if mode == "json":
            self.fields["document"] = JSONField(
                required=False, initial=_json_text(properties), label="Properties (JSON)"
            )
            if properties != self.stored:
                self.fields["document"].help_text = SECRET_HELP
            self.property_names = []
            return
        names = list(type_schema.property_names) if type_schema else []
        read_only = {p[1:] for p in (type_schema.read_only if type_schema else []) if p.count("/") == 1}
        names = [n for n in names if n not in read_only or n in properties]
        names += sorted(n for n in properties if n not in names)
        self.property_names = [n for n in names if n not in subscribed]
        self.subscribed_fields = subscribed
        required = set(type_schema.required if type_schema else [])
        for name in self.property_names:
            self.fields[PROP + name] = self._field(name, properties.get(name), name in required)

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
        field.label = name
        return field

    def _subscriptions(self, properties, data):
        if data is None:
            return [
                SubscriptionRow(i, s.target, s.component, s.path)
                for i, s in enumerate(graph.find_sources(properties))
            ]
        removed = set(data.getlist("sub_remove"))
        rows = zip(
            data.getlist("sub_target"), data.getlist("sub_component"), data.getlist("sub_path"), strict=False
        )
        return [SubscriptionRow(i, t, c, p, str(i) in removed) for i, (t, c, p) in enumerate(rows)]

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
        for s in self.subscriptions:
            if (
                s.removed
                and (self.mode == "json" or not s.top_level)
                and graph.is_source(_at(props, s.target))
            ):
                pointers.delete_value(props, pointers.split(s.target))
        try:
            props = restore_secrets(props, self.stored, self.write_only)
        except ValidationError as exc:
            self.add_engine_errors(exc)
            return None
        return self._add_new_subscription(props)

    def _add_new_subscription(self, props):
        target, component, path = (
            self.cleaned_data.get(k, "").strip() for k in ("new_target", "new_component", "new_path")
        )
        if not (target or component or path):
            return props
        for key, value, label in (
            ("new_target", target, "the property path"),
            ("new_component", component, "a component"),
            ("new_path", path, "a path"),
        ):
            if not value:
                self.add_error(key, f"choose {label} to subscribe")
        if self.errors:
            return None
        if not target.startswith("/"):
            target = "/" + target
        try:
            pointers.set_value(
                props, pointers.split(target), {graph.SOURCE_KEY: {"component": component, "path": path}}
            )
        except (ValueError, IndexError, KeyError, TypeError):
            self.add_error("new_target", f"{target}: there is no such place in the properties")
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
        new_target = (self.data.get("new_target") or "").strip()
        for s in self.subscriptions:
            if path == s.target or path.startswith(s.target + "/"):
                s.errors.append(message)
                return
        if new_target and (path == new_target or path == "/" + new_target.lstrip("/")):
            self.add_error("new_target", message)
            return
        parts = path.split("/")[1:] if path.startswith("/") else []
        if self.mode == "json":
            self.add_error("document", f"{path or '/'}: {message}")
        elif parts and PROP + pointers.unescape(parts[0]) in self.fields:
            rest = "/".join(parts[1:])
            self.add_error(
                PROP + pointers.unescape(parts[0]), f"{'/' + rest + ': ' if rest else ''}{message}"
            )
        else:
            self.add_error(None, f"{path + ': ' if path else ''}{message}")


def _at(doc, pointer):
    try:
        return pointers.resolve(doc, pointer)
    except (pointers.Missing, ValueError):
        return None
