"""Where each value of JSON text starts, so that an error found in the parsed document
names the line the editor's textarea numbers."""

import json

from hypothesis import given
from hypothesis import strategies as st

from portal import inputs, paths


def test_it_finds_the_line_of_each_value():
    text = '\n{\n  "Family": "web",\n  "ContainerDefinitions": [\n    {"Name": "web",\n     "Cpu": 256}\n  ],\n  "e": [], "o": {}\n}'
    assert inputs.json_lines(text) == {
        "": 2,
        "/Family": 3,
        "/ContainerDefinitions": 4,
        "/ContainerDefinitions/0": 5,
        "/ContainerDefinitions/0/Name": 5,
        "/ContainerDefinitions/0/Cpu": 6,
        "/e": 8,
        "/o": 8,
    }


def test_it_gives_nothing_for_text_that_does_not_parse():
    assert inputs.json_lines('{"a": ') == {} and inputs.json_lines("[" * 100 + "]" * 100) == {}


documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text('ab"\\\n/~é', max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text('ab/~"', max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(documents, st.sampled_from([None, 1, 2]))
def test_every_value_has_a_line_in_document_order(document, indent):
    text = json.dumps(document, indent=indent)
    lines = inputs.json_lines(text)
    expected = ["", *(p for p, _ in paths.walk(document, key_paths=False))]
    assert list(lines) == expected
    assert list(lines.values()) == sorted(lines.values())
    assert max(lines.values()) <= text.count("\n") + 1
