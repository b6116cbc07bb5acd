"""The registry's descriptions (AWS documentation, roughly Markdown, some HTML) and the
users' Markdown rendered safely: code, lists, emphasis and links, never raw HTML."""

import re

from portal import markup, schemas


def test_it_renders_double_backticks_as_code():
    html = markup.render_registry_text(
        "Registers a task from the supplied ``family`` and ``containerDefinitions``."
    )
    assert (
        html
        == "<p>Registers a task from the supplied <code>family</code> and <code>containerDefinitions</code>.</p>\n"
    )


def test_it_renders_bullets_and_paragraphs():
    text = "The name of the group.\n Constraints:\n  +  Must not match an existing group.\n  +  Lowercase.\n  \n  Stored as lowercase."
    html = markup.render_registry_text(text)
    assert html == (
        "<p>The name of the group.</p>\n<p>Constraints:</p>\n"
        "<ul>\n<li>Must not match an existing group.</li>\n<li>Lowercase.</li>\n</ul>\n<p>Stored as lowercase.</p>\n"
    )


def test_it_turns_the_api_reference_s_html_into_its_markdown():
    html = markup.render_registry_text(
        '<p>Use <code>true</code> or <i>false</i>; see <a href="https://docs.aws.amazon.com/x">the guide</a>.</p>'
        "<ul><li>one</li><li>two</li></ul>"
    )
    assert "<code>true</code>" in html and "<em>false</em>" in html
    assert '<a href="https://docs.aws.amazon.com/x" rel="nofollow noopener noreferrer">the guide</a>' in html
    assert "<li>one</li>" in html and "<li>two</li>" in html


def test_it_keeps_markdown_links_and_drops_script_links():
    html = markup.render_registry_text(
        "See [Task Networking](https://docs.aws.amazon.com/t.html) or [x](javascript:alert(1))."
    )
    assert (
        '<a href="https://docs.aws.amazon.com/t.html" rel="nofollow noopener noreferrer">Task Networking</a>'
        in html
    )
    assert "javascript:" not in html.replace("[x](javascript:alert(1))", "")
    assert 'href="javascript' not in html


def test_it_never_lets_html_through():
    html = markup.render_registry_text(
        'arn:aws:<region>:<account> <script>alert(1)</script> <img src=x onerror=alert(1)> <a href="javascript:x">y</a>'
    )
    assert "&lt;region&gt;" in html and "&lt;script&gt;" in html and "<img" not in html
    assert "<a " not in html


def test_the_first_paragraph_and_the_rest():
    first, rest = markup.registry_summary("One.\n Two.\n Three.")
    assert first == "<p>One.</p>\n" and rest == "<p>Two.</p>\n<p>Three.</p>\n"
    assert markup.registry_summary("Only one.") == ("<p>Only one.</p>\n", "")


def _descriptions(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


def test_every_type_description_in_the_registry_renders_safely():
    """Every type's description, and every property's of the ECS types, gives only the
    tags Markdown makes, no attribute but a link's http(s) href and rel."""
    tags = re.compile(r"<(/?)([a-z0-9]+)([^>]*)>")
    allowed = {"p", "code", "em", "strong", "ul", "ol", "li", "a", "br", "pre", "blockquote", "hr"}
    allowed |= {f"h{n}" for n in range(1, 7)}
    for name in schemas.type_names():
        schema = schemas.get_schema(name)
        texts = list(_descriptions(schema.raw)) if name.startswith("AWS::ECS::") else [schema.description]
        for text in texts:
            html = markup.render_registry_text(text)
            for closing, tag, attrs in tags.findall(html):
                assert tag in allowed, (name, tag, html)
                if tag == "a" and not closing:
                    assert re.fullmatch(
                        r' href="https?://[^"]+" rel="nofollow noopener noreferrer"', attrs
                    ), html
                else:
                    assert attrs == "" or tag in ("ol",) and re.fullmatch(r' start="\d+"', attrs), (
                        name,
                        html,
                    )


def test_an_image_in_a_description_stays_text():
    assert "<img" not in markup.render_registry_text("![x](https://tracker.example/p.gif)")
