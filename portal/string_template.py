"""Portal::StringTemplate: a text with `{{ Name }}` placeholders filled from Variables.

This is plain substitution and nothing else: no expressions, filters, loops or code, and
no Django or Jinja template engine, so a template can never run anything. The seed's Step
Functions definition (an ASL JSON document kept as a string, with placeholders for the
cluster and service names) is the typical use.
"""

import json
import re

from .errors import ValidationError
from .subscriptions import is_subscription

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
PLACEHOLDER = re.compile(r"\{\{\s*(" + NAME + r")\s*\}\}")


def placeholders(template):
    """The placeholder names of `template`, each once, in order of first appearance."""
    if not isinstance(template, str):
        return []
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(template)))


def _text(name, value):
    if is_subscription(value):
        raise ValidationError(f"variable {name} is a subscription that has not resolved yet")
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def unknown_placeholders(template, variables):
    """Placeholders of `template` that are not keys of `variables`."""
    known = variables if isinstance(variables, dict) else {}
    return [name for name in placeholders(template) if name not in known]


def unknown_placeholder_message(missing, variables):
    known = ", ".join(sorted(variables)) if isinstance(variables, dict) and variables else "(nothing)"
    marks = ", ".join("{{ " + name + " }}" for name in missing)
    noun = "placeholder" if len(missing) == 1 else "placeholders"
    return f"unknown {noun} {marks}; Variables has: {known}"


def render(template, variables):
    """Replace every `{{ Name }}` in `template` with `variables[Name]`.

    Strings are inserted as they are, anything else as compact JSON. A placeholder with no
    variable raises ValidationError, as does a variable still holding an unresolved
    subscription.
    """
    if not isinstance(template, str):
        raise ValidationError("Template must be a string")
    variables = variables if isinstance(variables, dict) else {}
    missing = unknown_placeholders(template, variables)
    if missing:
        raise ValidationError(
            unknown_placeholder_message(missing, variables),
            errors=[{"path": "/Template", "message": unknown_placeholder_message(missing, variables)}],
        )
    texts = {name: _text(name, variables[name]) for name in placeholders(template)}
    return PLACEHOLDER.sub(lambda m: texts[m.group(1)], template)


def render_properties(properties):
    """The observed value of a Portal::StringTemplate component: {"Value": rendered text}."""
    properties = properties if isinstance(properties, dict) else {}
    return {"Value": render(properties.get("Template", ""), properties.get("Variables") or {})}
