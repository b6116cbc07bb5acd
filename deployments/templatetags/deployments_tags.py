"""Small filters for the deployment and build log pages."""

import json

from django import template

from deployments.markdown import is_text_change, text_diff

register = template.Library()


@register.filter
def pretty_json(value):
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def short_id(value):
    """The last part of an ARN or path: 'arn:...:task/cluster/abc' -> 'abc'."""
    return str(value or "").rsplit("/", 1)[-1]


@register.filter
def seconds(value):
    if value is None:
        return ""
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.1f} min"


@register.filter
def get(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def change_text(change):
    """One change of a property diff, for a <pre>: a unified diff for a long text (a
    template, a script), else `path: before → after` in JSON."""
    if is_text_change(change):
        return text_diff(change["old"], change["new"]).removeprefix("```diff\n").removesuffix("\n```")
    before = json.dumps(change.get("old"), ensure_ascii=False, default=str)
    after = json.dumps(change.get("new"), ensure_ascii=False, default=str)
    return f"{change['path']}: {before} → {after}"
