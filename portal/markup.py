"""Text written elsewhere, rendered as HTML for the pages: the users' Markdown (problem,
solution, lessons, next steps) and the CloudFormation registry's descriptions of types and
properties.

Both go through markdown-it with raw HTML off, so a text cannot carry markup of its own
(any tag left shows as text), and markdown-it drops javascript:, vbscript:, file: and
data: links; links get rel="nofollow noopener noreferrer". No inline style or script ever
comes out, as the pages' Content-Security-Policy requires.

The registry's texts are AWS's documentation converted, more or less, to Markdown:
``literal`` (RST's double backticks, which CommonMark reads as code as well), *emphasis*,
[links](url), "+" bullet lists, one newline between paragraphs, and here and there the
HTML of an API reference (<p>, <code>, <a href>, <ul><li>, <i>, <b>). Those tags become
their Markdown first; placeholders such as <region> stay text.
"""

import functools
import re

from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _link_open(renderer, tokens, idx, options, env):
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


_markdown.add_render_rule("link_open", _link_open)
# The registry's texts have no images; one written there would load from anywhere.
_registry = MarkdownIt("commonmark", {"html": False}).disable("image")
_registry.add_render_rule("link_open", _link_open)

MAX_DESCRIPTION = 20_000


def render_markdown(text):
    """A user's Markdown as HTML (a string markdown-it escaped)."""
    return _markdown.render(text or "")


_TAGS = [
    (re.compile(r"</?p\s*>|<br\s*/?>|</?ul\s*>", re.I), "\n\n"),
    (re.compile(r"<li\s*>", re.I), "\n\n- "),
    (re.compile(r"</li\s*>", re.I), ""),
    (re.compile(r"<code\s*>([^<`]*)</code\s*>", re.I), r"``\1``"),
    (re.compile(r"<(?:i|em)\s*>([^<*]*)</(?:i|em)\s*>", re.I), r"*\1*"),
    (re.compile(r"<(?:b|strong)\s*>([^<*]*)</(?:b|strong)\s*>", re.I), r"**\1**"),
    (re.compile(r"<a\s+href=\"(https?://[^\"\s<>()]+)\"\s*>([^<\[\]]*)</a\s*>", re.I), r"[\2](\1)"),
]
_BULLET = re.compile(r"^[+*-]\s+")


def _as_markdown(text):
    for pattern, replacement in _TAGS:
        text = pattern.sub(replacement, text)
    paragraphs = []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            paragraphs.append(_BULLET.sub("- ", line))
    # One newline ends a paragraph in these texts; bullets stay one list.
    out = []
    for i, line in enumerate(paragraphs):
        if i:
            both_bullets = line.startswith("- ") and paragraphs[i - 1].startswith("- ")
            out.append("\n" if both_bullets else "\n\n")
        out.append(line)
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def render_registry_text(text):
    """A registry description as HTML: paragraphs, lists, code, emphasis, links."""
    return _registry.render(_as_markdown((text or "")[:MAX_DESCRIPTION]))


def registry_summary(text):
    """(first paragraph, the rest) of a registry description, each as HTML ("" when none)."""
    html = render_registry_text(text)
    end = html.find("</p>\n")
    if not html.startswith("<p>") or end < 0 or end + 5 >= len(html):
        return html, ""
    return html[: end + 5], html[end + 5 :]
