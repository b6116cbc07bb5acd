"""Template helpers: JSON values with subscriptions shown as links to their source, and
the users' Markdown (problem, solution, lessons, next steps) as HTML."""

import json
from urllib.parse import quote

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

from portal.graph import SOURCE_KEY, is_source

register = template.Library()

# Raw HTML is off, so a user's text cannot carry markup of its own; markdown-it drops
# javascript:, vbscript:, file: and data: links.
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _link_open(renderer, tokens, idx, options, env):
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


_markdown.add_render_rule("link_open", _link_open)


@register.filter
def markdown(text):
    """A user's Markdown as HTML, in a `.markdown` block."""
    return format_html('<div class="markdown">{}</div>', mark_safe(_markdown.render(text or "")))  # noqa: S308


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
