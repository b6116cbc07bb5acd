"""Which lists are edited as rows (the schema's word), how rows read back into the
document, and where a value goes at a key path."""

import pytest
from django.http import QueryDict

from portal import rows
from portal.schemas import get_schema
from portal.secrets import UNCHANGED
from portal.tests.factories import src

TD = get_schema("AWS::ECS::TaskDefinition")
TASK = {
    "Family": "web",
    "ContainerDefinitions": [
        {
            "Name": "web",
            "Image": "web:1",
            "PortMappings": [{"ContainerPort": 3001, "Protocol": "tcp"}],
            "Environment": [
                {"Name": "NODE_ENV", "Value": "production"},
                {"Name": "API_URL", "Value": src("api-lb", "/resource_value/DNSName")},
            ],
        }
    ],
    "Tags": [{"Key": "team", "Value": "chips"}],
}


def names(tables):
    return [(t.at, t.present) for t in tables]


def test_the_schema_says_which_lists_are_rows():
    assert [c.name for c in rows.columns_at(TD, "/Tags")] == ["Key", "Value"]
    env = rows.columns_at(TD, "/ContainerDefinitions/web/Environment")
    assert [(c.name, c.kind) for c in env] == [("Name", "string"), ("Value", "string")]
    ports = {c.name: c.kind for c in rows.columns_at(TD, "/ContainerDefinitions/0/PortMappings")}
    assert ports["Name"] == "string" and ports["ContainerPort"] == "integer" and ports["Protocol"] == "enum"
    assert list(ports)[0] == "Name"  # the key comes first
    assert rows.columns_at(TD, "/ContainerDefinitions") is None  # keyed, but not simple objects
    assert rows.columns_at(TD, "/ContainerDefinitions/0/Command") is None  # strings, not objects
    assert rows.columns_at(get_schema("AWS::EC2::SecurityGroup"), "/SecurityGroupIngress") is None  # no key


def test_it_finds_the_tables_of_a_document_present_and_absent():
    tables = rows.find_tables(TD, TASK)
    found = names(tables)
    assert ("/ContainerDefinitions/web/Environment", True) in found
    assert ("/ContainerDefinitions/web/PortMappings", True) in found
    assert ("/ContainerDefinitions/web/Secrets", False) in found
    assert ("/Tags", True) in found
    env = next(t for t in tables if t.name == "Environment")
    assert env.pointer == "/ContainerDefinitions/0/Environment"
    assert [c.text for c in env.rows[0].cells] == ["NODE_ENV", "production"]
    assert (env.rows[1].cells[1].component, env.rows[1].cells[1].path) == (
        "api-lb",
        "/resource_value/DNSName",
    )


@pytest.mark.parametrize(
    "environment",
    [
        [{"Name": "PORT", "Value": 3000}],  # a number where the schema says string
        [{"Name": "EMPTY", "Value": ""}],  # an empty cell reads back as no Value
        [{"Name": "A", "Value": "1"}, {"Name": "A", "Value": "2"}],  # one key, two items
        [{"Name": "A", "Value": "1", "Extra": True}],
        [{"Name": "A", "Value": {"$source": {"component": "x"}}}],  # a malformed subscription
    ],
)
def test_a_list_rows_cannot_show_as_it_is_stays_json(environment):
    doc = {"ContainerDefinitions": [{"Name": "web", "Environment": environment}]}
    assert "/ContainerDefinitions/web/Environment" not in [t.at for t in rows.find_tables(TD, doc)]


def test_cut_leaves_the_rest_for_the_json():
    rest = rows.cut(TASK, rows.find_tables(TD, TASK))
    assert rest == {"Family": "web", "ContainerDefinitions": [{"Name": "web", "Image": "web:1"}]}
    assert "Environment" in TASK["ContainerDefinitions"][0]  # a copy


def post(table, t=0, **cells):
    data = QueryDict(mutable=True)
    data[f"rows-{t}-at"] = table.at
    data[f"rows-{t}-present"] = "1" if table.present else "0"
    for key, value in cells.items():
        for v in value if isinstance(value, list) else [value]:
            data.appendlist(key.replace("_", "-"), v)
    return data


def env_table():
    return next(t for t in rows.find_tables(TD, TASK) if t.name == "Environment")


def test_rows_read_back_into_the_document():
    table = env_table()
    data = post(
        table,
        rows_0_row=["0", "1", "7"],
        rows_0_0_0="NODE_ENV",
        rows_0_0_1="staging",
        rows_0_1_0="API_URL",
        rows_0_1_1_component="api-lb",
        rows_0_1_1_path="/resource_value/DNSName",
        rows_0_7_0="PORT",
        rows_0_7_1="3001",
    )
    posted = rows.read_posted(table, 0, data)
    doc = rows.cut(TASK, [table])
    assert rows.place(doc, posted) is None
    assert doc["ContainerDefinitions"][0]["Environment"] == [
        {"Name": "NODE_ENV", "Value": "staging"},
        {"Name": "API_URL", "Value": src("api-lb", "/resource_value/DNSName")},
        {"Name": "PORT", "Value": "3001"},
    ]


def test_removed_blank_and_unsubscribed_rows():
    table = env_table()
    data = post(
        table,
        rows_0_row=["0", "1", "2"],
        rows_0_0_0="NODE_ENV",
        rows_0_0_1="production",
        rows_0_0_remove="on",
        rows_0_1_0="API_URL",
        rows_0_1_1_component="api-lb",
        rows_0_1_1_path="/resource_value/DNSName",
        rows_0_1_1_unsubscribe="on",
    )
    posted = rows.read_posted(table, 0, data)
    doc = rows.cut(TASK, [table])
    rows.place(doc, posted)
    assert doc["ContainerDefinitions"][0]["Environment"] == [{"Name": "API_URL"}]


def test_bad_rows_say_what_is_wrong_and_place_nothing():
    ports = next(t for t in rows.find_tables(TD, TASK) if t.name == "PortMappings")
    columns = [c.name for c in ports.columns]
    data = post(ports, rows_0_row=["0", "1"])
    data[f"rows-0-0-{columns.index('ContainerPort')}"] = "three thousand"
    data[f"rows-0-1-{columns.index('Protocol')}"] = "sctp"
    data["rows-0-1-0"] = "x"
    posted = rows.read_posted(ports, 0, data)
    doc = rows.cut(TASK, [ports])
    rows.place(doc, posted)
    assert "PortMappings" not in doc["ContainerDefinitions"][0]
    errors = [c.error for r in posted.rows for c in r.cells if c.error]
    assert errors == [
        "ContainerPort must be a whole number, not 'three thousand'",
        "Protocol must be one of tcp, udp",
    ]


def test_two_rows_with_one_key_are_refused():
    table = env_table()
    data = post(table, rows_0_row=["0", "1"], rows_0_0_0="A", rows_0_1_0="A", rows_0_1_1="2")
    posted = rows.read_posted(table, 0, data)
    assert posted.items() is None
    assert posted.rows[1].errors == ["Name A is already row 1's: one row per Name"]


def test_a_stale_form_is_refused():
    table = env_table()
    data = post(table)
    data["rows-0-at"] = "/ContainerDefinitions/api/Environment"
    with pytest.raises(ValueError, match="reload"):
        rows.read_posted(table, 0, data)


def test_rows_whose_container_left_the_json_have_nowhere_to_go():
    table = env_table()
    posted = rows.read_posted(table, 0, post(table, rows_0_row=["0"], rows_0_0_0="A", rows_0_0_1="1"))
    assert "nowhere to go" in rows.place({"ContainerDefinitions": []}, posted)
    both = {"ContainerDefinitions": [{"Name": "web", "Environment": []}]}
    assert "edited as rows" in rows.place(both, posted)


def test_an_absent_list_stays_absent_without_rows_and_an_emptied_one_stays_empty():
    absent = next(t for t in rows.find_tables(TD, TASK) if t.name == "Secrets")
    doc = rows.cut(TASK, [absent])
    rows.place(doc, rows.read_posted(absent, 0, post(absent, rows_0_row=["0"])))
    assert "Secrets" not in doc["ContainerDefinitions"][0]
    table = env_table()
    doc = rows.cut(TASK, [table])
    rows.place(doc, rows.read_posted(table, 0, post(table)))
    assert doc["ContainerDefinitions"][0]["Environment"] == []


def test_a_secret_cell_is_marked_as_such():
    doc = {
        "ContainerDefinitions": [
            {"Name": "web", "Environment": [{"Name": "DB_PASSWORD", "Value": UNCHANGED}]}
        ]
    }
    table = next(t for t in rows.find_tables(TD, doc) if t.name == "Environment")
    assert table.rows[0].cells[1].is_secret


def test_set_at_follows_keys_and_makes_keyed_items():
    doc = rows.cut(TASK, [])
    source = src("api-lb", "/resource_value/DNSName")
    assert rows.set_at(doc, "/ContainerDefinitions/web/Environment/NODE_ENV/Value", source, TD) == (
        "/ContainerDefinitions/0/Environment/0/Value"
    )
    assert rows.set_at(doc, "/ContainerDefinitions/web/Environment/WEB_URL/Value", source, TD) == (
        "/ContainerDefinitions/0/Environment/2/Value"
    )
    assert doc["ContainerDefinitions"][0]["Environment"][2] == {"Name": "WEB_URL", "Value": source}
    assert rows.set_at(doc, "/ContainerDefinitions/web/Secrets/DB/ValueFrom", source, TD) == (
        "/ContainerDefinitions/0/Secrets/0/ValueFrom"
    )
    assert doc["ContainerDefinitions"][0]["Secrets"] == [{"Name": "DB", "ValueFrom": source}]
    with pytest.raises(ValueError, match="no item"):
        rows.set_at(doc, "/ContainerDefinitions/web/Command/x", source, TD)
    with pytest.raises(ValueError, match="single value"):
        rows.set_at(doc, "/Family/x", source, TD)
    with pytest.raises(ValueError, match="there is no item 5"):
        rows.set_at(doc, "/ContainerDefinitions/5/Image", source, TD)


def test_cells_take_json_numbers_only():
    port = rows.Column("ContainerPort", "integer")
    weight = rows.Column("Weight", "number")
    assert port.parse(" 3000 ") == 3000 and weight.parse("2.5") == 2.5 and weight.parse("2") == 2
    for text in ("1_000", "٣", "3.0", "0x10", ""):
        with pytest.raises(ValueError, match="must be a whole number"):
            port.parse(text)
    for text in ("nan", "inf", "1e999", "1,5"):
        with pytest.raises(ValueError, match="must be a number"):
            weight.parse(text)
