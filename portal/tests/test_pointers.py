"""Key paths: a list item named by its key (an environment variable's Name, a tag's Key,
a stack output's OutputKey) rather than by its place in the list."""

from hypothesis import given
from hypothesis import strategies as st

from portal import pointers

TASK = {
    "Family": "api",
    "ContainerDefinitions": [
        {
            "Name": "web",
            "Environment": [
                {"Name": "NODE_ENV", "Value": "production"},
                {"Name": "PORT", "Value": "3000"},
                {"Name": "API_URL", "Value": "http://api:3000"},
            ],
            "PortMappings": [{"ContainerPort": 3000, "Protocol": "tcp"}],
        }
    ],
}


def test_it_names_keyed_items_by_their_key():
    assert (
        pointers.key_path("/ContainerDefinitions/0/Environment/2/Value", TASK)
        == "/ContainerDefinitions/web/Environment/API_URL/Value"
    )
    assert pointers.key_path("/ContainerDefinitions/0", TASK) == "/ContainerDefinitions/web"


def test_it_keeps_the_index_of_an_item_without_a_key():
    assert (
        pointers.key_path("/ContainerDefinitions/0/PortMappings/0/ContainerPort", TASK)
        == "/ContainerDefinitions/web/PortMappings/0/ContainerPort"
    )


def test_it_keeps_the_index_when_two_items_share_a_key_or_the_key_is_a_number():
    doc = {"Tags": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}, {"Key": "7", "Value": "x"}]}
    assert pointers.key_path("/Tags/0/Value", doc) == "/Tags/0/Value"
    assert pointers.key_path("/Tags/1/Value", doc) == "/Tags/1/Value"
    assert pointers.key_path("/Tags/2/Value", doc) == "/Tags/2/Value"  # "/Tags/7" would read an index


def test_it_keeps_the_index_where_two_sides_of_a_change_hold_different_items():
    before = {"Tags": [{"Key": "old", "Value": "1"}]}
    after = {"Tags": [{"Key": "new", "Value": "1"}]}
    assert pointers.key_path("/Tags/0/Key", before, after) == "/Tags/0/Key"
    assert pointers.key_path("/Tags/0/Key", before) == "/Tags/old/Key"
    same = {"Tags": [{"Key": "team", "Value": "chips"}]}
    assert pointers.key_path("/Tags/0/Value", same, {"Tags": [{"Key": "team", "Value": "crisps"}]}) == (
        "/Tags/team/Value"
    )


def test_it_leaves_what_the_document_does_not_hold():
    assert pointers.key_path("/Tags/4/Value", TASK) == "/Tags/4/Value"
    assert pointers.key_path("", TASK) == ""
    assert pointers.key_path("/Family", {}) == "/Family"


def test_it_escapes_keys_that_hold_a_slash():
    doc = {"Outputs": [{"OutputKey": "a/b", "OutputValue": "x"}]}
    path = pointers.key_path("/Outputs/0/OutputValue", doc)
    assert path == "/Outputs/a~1b/OutputValue" and pointers.resolve(doc, path) == "x"


def test_index_path_is_the_reverse():
    key = "/ContainerDefinitions/web/Environment/API_URL/Value"
    assert pointers.index_path(TASK, key) == "/ContainerDefinitions/0/Environment/2/Value"
    assert pointers.index_path(TASK, "/ContainerDefinitions/web/Environment/NEW/Value") == (
        "/ContainerDefinitions/0/Environment/NEW/Value"
    )


names = st.text("abcXY_", min_size=0, max_size=3)
items = st.lists(
    st.one_of(
        st.fixed_dictionaries({"Name": names, "Value": st.integers(0, 9)}),
        st.fixed_dictionaries({"Key": st.sampled_from(["1", "Name", "a"]), "Value": st.integers(0, 9)}),
        st.integers(0, 9),
    ),
    max_size=5,
)


@given(items)
def test_a_key_path_reads_the_same_value_as_its_pointer(listed):
    doc = {"L": listed}
    for i, item in enumerate(listed):
        path = pointers.key_path(f"/L/{i}", doc)
        assert pointers.resolve(doc, path) is item
        assert pointers.index_path(doc, path) == f"/L/{i}"
