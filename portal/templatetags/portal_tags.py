"""Template helpers: JSON values with subscriptions shown as links to their source, and
the users' Markdown (problem, solution, lessons, next steps) as HTML."""

import json
from urllib.parse import quote

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from portal.graph import SOURCE_KEY, is_source
from portal.markup import registry_summary, render_markdown, render_registry_text

register = template.Library()


@register.filter
def markdown(text):
    """A user's Markdown as HTML, in a `.markdown` block."""
    return format_html('<div class="markdown">{}</div>', mark_safe(render_markdown(text)))  # noqa: S308


@register.filter
def registry_description(text):
    """A registry description (of a type, a property) as HTML, in a `.registry-text` block."""
    return format_html('<div class="registry-text">{}</div>', mark_safe(render_registry_text(text)))  # noqa: S308


@register.simple_tag
def registry_description_summary(text):
    """A registry description's first paragraph, the rest folded under "More"."""
    first, rest = registry_summary(text)
    if not rest:
        return format_html('<div class="registry-text">{}</div>', mark_safe(first))  # noqa: S308
    return format_html(
        '<div class="registry-text">{}<details class="more"><summary>More</summary>{}</details></div>',
        mark_safe(first),  # noqa: S308
        mark_safe(rest),  # noqa: S308
    )


def component_url(slug, name, change_set_id=None):
    url = f"/workspaces/{quote(slug, safe='')}/components/{quote(name, safe='')}/"
    return f"{url}?changeset={change_set_id}" if change_set_id else url


def _source_link(spec, slug, change_set_id):
    component, path = (spec or {}).get("component"), (spec or {}).get("path")
    if not isinstance(component, str) or not component:
        return format_html('<span class="sub broken">subscription without a component</span>')
    return format_html(
        '<a class="sub" href="{}" title="subscription to {}{}">'
        '<span class="sub-arrow">⇐</span> {}<span class="sub-path">{}</span></a>',
        component_url(slug, component, change_set_id),
        component,
        path or "",
        component,
        path or "",
    )


@register.simple_tag
def json_value(value, slug, change_set_id=None):
    """`value` as JSON, every {"$source": ...} in it shown as a link to its source."""
    sources = []

    def swap(node):
        if is_source(node):
            sources.append(node[SOURCE_KEY])
            return f"\x00{len(sources) - 1}\x00"
        if isinstance(node, dict):
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    swapped = swap(value)
    if isinstance(swapped, str) and swapped.startswith("\x00"):
        return _source_link(sources[0], slug, change_set_id)
    nested = isinstance(value, dict | list) and len(json.dumps(value, default=str)) > 60
    text = escape(json.dumps(swapped, indent=2 if nested else None, ensure_ascii=False, default=str))
    for i, spec in enumerate(sources):
        text = text.replace(escape(json.dumps(f"\x00{i}\x00")), _source_link(spec, slug, change_set_id))
    return mark_safe(text)  # noqa: S308 - every piece above is escaped


@register.simple_tag
def source_link(component, path, slug, change_set_id=None):
    return _source_link({"component": component, "path": path}, slug, change_set_id)


@register.filter
def op_class(op):
    return {"added": "added", "create": "added", "deleted": "deleted", "delete": "deleted"}.get(
        op, "modified"
    )


@register.filter
def as_json(value):
    """A JSON document, indented (audit data, observed values). Escaped by the template."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)
