"""The spec file format (portal/spec.py): loading, every error a user can meet, dumping."""

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from portal.errors import ValidationError
from portal.spec import SCHEMA, ComponentSpec, Spec, dump_spec, dumps_spec, load_spec, parse_spec

VPC = {"name": "vpc", "schema": "AWS::EC2::VPC", "properties": {"CidrBlock": "10.0.0.0/16"}}
SUBNET = {
    "name": "subnet",
    "schema": "AWS::EC2::Subnet",
    "properties": {
        "VpcId": {"$source": {"component": "vpc", "path": "/resource_value/VpcId"}},
        "CidrBlock": "10.0.1.0/24",
    },
}

FULL_YAML = """\
workspace:
  name: Tony's Chips sandbox
  slug: tonys-chips
  region: us-east-1
  approvals_required: 1
change_set:
  name: migrate-to-service-discovery
  problem: |
    Web service was calling API through ALB
  solution: Cloud Map
components:
  - name: vpc
    schema: AWS::EC2::VPC
    properties:
      CidrBlock: 10.0.0.0/16
      EnableDnsHostnames: true
  - name: api
    replace: true
  - name: api-tg
    delete: true
pipelines:
  - name: deploy
    stages: [{kind: run_task}]
"""


def error_of(source):
    with pytest.raises(ValidationError) as info:
        load_spec(source)
    return info.value


def parse_error(data, origin="spec"):
    with pytest.raises(ValidationError) as info:
        parse_spec(data, origin)
    return info.value


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- Loading ------------------------------------------------------------------------------


def test_it_loads_the_contract_from_json_text():
    spec = load_spec(json.dumps({"components": [VPC, SUBNET, {"name": "old", "delete": True}]}))
    assert spec == Spec(
        components=[
            ComponentSpec("vpc", "AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"}),
            ComponentSpec("subnet", "AWS::EC2::Subnet", SUBNET["properties"]),
            ComponentSpec("old", delete=True),
        ]
    )
    assert spec.workspace is None and spec.change_set is None and spec.pipelines == []


def test_it_loads_every_extension_from_yaml_text():
    spec = load_spec(FULL_YAML)
    assert spec.workspace == {
        "name": "Tony's Chips sandbox",
        "slug": "tonys-chips",
        "region": "us-east-1",
        "approvals_required": 1,
    }
    assert spec.change_set == {
        "name": "migrate-to-service-discovery",
        "problem": "Web service was calling API through ALB\n",
        "solution": "Cloud Map",
    }
    assert spec.components[1] == ComponentSpec("api", replace=True)
    assert spec.components[2] == ComponentSpec("api-tg", delete=True)
    assert spec.pipelines == [{"name": "deploy", "stages": [{"kind": "run_task"}]}]
    assert spec.component("vpc").properties["EnableDnsHostnames"] is True
    assert spec.component("nope") is None


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_it_loads_files_by_path_or_str(tmp_path, suffix):
    text = (
        json.dumps({"components": [VPC]})
        if suffix == ".json"
        else "components:\n  - "
        + ("name: vpc\n    schema: AWS::EC2::VPC\n    properties: {CidrBlock: 10.0.0.0/16}\n")
    )
    path = write(tmp_path, f"ws{suffix}", text)
    assert load_spec(path) == load_spec(str(path)) == load_spec(json.dumps({"components": [VPC]}))


def test_replace_may_come_with_properties():
    spec = load_spec(json.dumps({"components": [{**VPC, "replace": True}]}))
    assert spec.components[0].replace and spec.components[0].properties == VPC["properties"]


def test_a_yaml_flow_mapping_is_yaml_not_broken_json():
    spec = load_spec("{components: [{name: api, replace: true}]}")
    assert spec.components == [ComponentSpec("api", replace=True)]


def test_a_component_may_be_added_with_no_properties():
    assert load_spec('{"components": [{"name": "c", "schema": "AWS::ECS::Cluster"}]}').components == [
        ComponentSpec("c", "AWS::ECS::Cluster")
    ]


def test_parse_spec_copies_its_input():
    data = {"components": [json.loads(json.dumps(SUBNET))], "pipelines": [{"a": [1]}]}
    spec = parse_spec(data)
    data["components"][0]["properties"]["CidrBlock"] = "changed"
    data["pipelines"][0]["a"].append(2)
    assert spec.components[0].properties["CidrBlock"] == "10.0.1.0/24"
    assert spec.pipelines == [{"a": [1]}]


def test_load_spec_wants_a_path_or_text():
    with pytest.raises(TypeError):
        load_spec(42)


# --- Syntax errors ------------------------------------------------------------------------


def test_invalid_json_says_file_line_and_column(tmp_path):
    path = write(tmp_path, "cs.json", '{\n  "components": [\n    {"name": "a",}\n  ]\n}')
    message = error_of(path).message
    assert message.startswith(f"{path}: invalid JSON at line 3, column 18")


def test_invalid_json_text_says_line_and_column():
    assert error_of('{"components": [}').message == "spec: invalid JSON at line 1, column 17: Expecting value"


def test_invalid_yaml_says_file_line_and_column(tmp_path):
    path = write(
        tmp_path, "cs.yaml", "components:\n  - name: a\n    schema: AWS::EC2::VPC\n   properties: {}\n"
    )
    message = error_of(path).message
    assert message.startswith(f"{path}: invalid YAML at line 4, column 4:")


def test_a_json_file_must_hold_json(tmp_path):
    path = write(tmp_path, "cs.json", "components:\n  - name: a\n")
    assert error_of(path).message.startswith(f"{path}: invalid JSON at line 1, column 1")


def test_yaml_is_loaded_safely():
    message = error_of("components: !!python/object/apply:os.system ['true']\n").message
    assert message.startswith("spec: invalid YAML at line 1")


def test_a_missing_file_or_a_wrong_suffix_is_named(tmp_path):
    assert error_of(tmp_path / "nope.yaml").message == f"{tmp_path / 'nope.yaml'}: no such file"
    assert error_of("nope.yml").message == "nope.yml: no such file"
    path = write(tmp_path, "cs.txt", "{}")
    assert "must end in .json, .yaml or .yml" in error_of(path).message


@pytest.mark.parametrize(
    "text, key",
    [
        ('{"components": [{"name": "a", "name": "b", "schema": "AWS::EC2::VPC"}]}', "name"),
        ("components:\n  - name: a\n    schema: AWS::EC2::VPC\n    schema: AWS::EC2::Subnet\n", "schema"),
    ],
)
def test_duplicate_keys_are_refused_not_silently_dropped(text, key):
    message = error_of(text).message
    assert f'duplicate key "{key}"' in message
    if text.startswith("components"):
        assert "at line 4 (first at line 3)" in message


# --- Shape errors -------------------------------------------------------------------------


@pytest.mark.parametrize("text, kind", [("[1, 2]", "a list"), ("", "null"), ("42", "a number")])
def test_a_spec_must_be_an_object(text, kind):
    assert error_of(text).message == f'spec: a spec must be an object with a "components" list, not {kind}'


def test_a_word_that_is_no_file_gets_a_hint():
    message = error_of("tonys-chips").message
    assert message == (
        'spec: a spec must be an object with a "components" list, not a string; '
        "if 'tonys-chips' is a file name, the file must exist and end in .json, .yaml or .yml"
    )


def test_an_existing_file_with_another_suffix_is_taken_as_a_file(tmp_path):
    path = write(tmp_path, "spec.txt", "components: []")
    assert error_of(str(path)).message == f"{path}: a spec file must end in .json, .yaml or .yml"


def test_components_must_be_there(tmp_path):
    path = write(tmp_path, "ws.yaml", "workspace: {name: x}\n")
    message = error_of(path).message
    assert message.startswith(f'{path}: "components" is missing')
    assert '{"components": [{"name": ..., "schema": ..., "properties": {...}}]}' in message


def test_components_must_be_a_list():
    message = parse_error({"components": {"name": "vpc"}}).message
    assert message == 'spec: "components" must be a list, not an object'


def test_a_component_must_be_an_object():
    message = parse_error({"components": [VPC, "subnet"]}).message
    assert message == "spec: component #2 must be an object with a name, not a string"


def test_a_component_without_a_name_is_named_by_position(tmp_path):
    path = write(
        tmp_path,
        "cs.yaml",
        "components:\n"
        "  - {name: a, schema: AWS::EC2::VPC}\n"
        "  - {name: b, schema: AWS::EC2::VPC}\n"
        "  - schema: AWS::EC2::Subnet\n"
        "    properties: {}\n",
    )
    error = error_of(path)
    assert error.message == f'{path}: component #3 has no "name" (line 4)'
    assert error.errors == [{"path": "/components/2", "message": 'component #3 has no "name" (line 4)'}]


@pytest.mark.parametrize("name", ["", "   ", 7, ["a"]])
def test_a_name_must_be_a_non_empty_string(name):
    message = parse_error({"components": [{"name": name, "delete": True}]}).message
    assert message.startswith('spec: component #1: "name" must be a non-empty string')


def test_a_name_must_be_tidy_and_short():
    assert (
        "spaces at its start or end" in parse_error({"components": [{"name": " a", "delete": True}]}).message
    )
    long = "x" * 256
    assert "longer than 255" in parse_error({"components": [{"name": long, "delete": True}]}).message


def test_duplicate_names_are_refused():
    message = parse_error({"components": [VPC, SUBNET, dict(VPC)]}, "ws.json").message
    assert message == 'ws.json: component #3 ("vpc"): duplicate name, component #1 has it already'


@pytest.mark.parametrize(
    "extra, said",
    [
        ({"properties": {}}, '"properties"'),
        ({"schema": "AWS::EC2::VPC"}, '"schema"'),
        ({"schema": "AWS::EC2::VPC", "properties": {}}, '"schema" and "properties"'),
    ],
)
def test_delete_goes_alone(extra, said):
    message = parse_error({"components": [{"name": "old", "delete": True, **extra}]}).message
    assert message.startswith(f'spec: component #1 ("old"): "delete": true cannot go with {said}')


def test_delete_and_replace_contradict_each_other():
    message = parse_error({"components": [{"name": "old", "delete": True, "replace": True}]}).message
    assert '"delete": true cannot go with "replace": true' in message


def test_properties_need_a_schema_unless_deleting():
    message = parse_error(
        {"components": [{"name": "vpc", "properties": {"CidrBlock": "10.0.0.0/16"}}]}
    ).message
    assert message.startswith('spec: component #1 ("vpc"): "schema" is missing')
    assert '"schema": "AWS::EC2::VPC"' in message
    message = parse_error({"components": [{"name": "vpc", "replace": True, "properties": {}}]}).message
    assert '"schema" is missing' in message


def test_a_component_must_say_what_to_do():
    message = parse_error({"components": [{"name": "vpc"}]}).message
    assert message == (
        'spec: component #1 ("vpc"): says nothing to do: give "schema" and "properties", '
        '"delete": true or "replace": true'
    )


@pytest.mark.parametrize("properties, kind", [([], "a list"), ("CidrBlock", "a string"), (3, "a number")])
def test_properties_must_be_an_object(properties, kind):
    message = parse_error({"components": [{**VPC, "properties": properties}]}).message
    assert message == f'spec: component #1 ("vpc"): "properties" must be an object, not {kind}'


@pytest.mark.parametrize("flag", ["delete", "replace"])
def test_flags_must_be_booleans(flag):
    message = parse_error({"components": [{"name": "vpc", flag: "yes"}]}).message
    assert f'"{flag}" must be true or false' in message


@pytest.mark.parametrize("schema", ["AWS::EC2:VPC", "vpc", "", 3])
def test_schema_must_look_like_a_type_name(schema):
    message = parse_error({"components": [{**VPC, "schema": schema}]}).message
    assert "is not a type name like AWS::EC2::VPC" in message


def test_unknown_component_keys_get_a_suggestion():
    message = parse_error({"components": [{**VPC, "propertes": {}}]}).message
    assert message == 'spec: component #1 ("vpc"): unknown key "propertes" (did you mean "properties"?)'
    message = parse_error({"components": [{**VPC, "zzz": 1}]}).message
    assert 'unknown key "zzz" (allowed: name, schema, delete, replace, properties)' in message


def test_unknown_top_level_keys_get_a_suggestion():
    message = parse_error({"components": [], "change-set": {}}).message
    assert message == 'spec: top level: unknown key "change-set" (did you mean "change_set"?)'
    message = parse_error({"component": []}).message
    assert 'unknown key "component" (did you mean "components"?)' in message


def test_workspace_section_is_checked():
    error = parse_error(
        {
            "workspace": {
                "name": "",
                "slug": "tonys chips",
                "region": "mars",
                "approvals_required": -1,
                "regoin": "x",
            },
            "components": [],
        }
    )
    messages = [e["message"] for e in error.errors]
    assert 'workspace: unknown key "regoin" (did you mean "region"?)' in messages
    assert 'workspace: "name" must be a non-empty string' in messages
    assert any("slug" in m and "letters, digits" in m for m in messages)
    assert any("not an AWS region" in m for m in messages)
    assert any("approvals_required" in m for m in messages)
    assert parse_error({"workspace": [], "components": []}).message == (
        'spec: "workspace" must be an object, not a list'
    )
    assert (
        "approvals_required"
        in parse_error({"workspace": {"approvals_required": True}, "components": []}).message
    )


def test_change_set_section_is_checked():
    message = parse_error({"change_set": {"name": "x", "problem": ["a"]}, "components": []}).message
    assert message == 'spec: change_set: "problem" must be a string, not a list'
    assert '"name" must not be empty' in parse_error({"change_set": {"name": " "}, "components": []}).message
    assert "must be an object" in parse_error({"change_set": "x", "components": []}).message


def test_pipelines_must_be_a_list():
    assert parse_error({"components": [], "pipelines": {}}).message == (
        'spec: "pipelines" must be a list, not an object'
    )


def test_yaml_values_that_are_not_json_are_refused():
    error = error_of(
        "components:\n"
        "  - name: a\n"
        "    schema: AWS::EC2::VPC\n"
        "    properties:\n"
        "      Date: 2025-10-21\n"
        "      80: http\n"
        "      Ratio: .nan\n"
    )
    messages = [e["message"] for e in error.errors]
    assert (
        'component #1 ("a"): properties/Date: 2025-10-21 was read as a YAML date: quote it to keep a string (line 5)'
        in messages
    )
    assert 'component #1 ("a"): properties: key 80 must be a string: quote it (line 6)' in messages
    assert any("properties/Ratio: nan is not a JSON number" in m for m in messages)


@pytest.mark.parametrize(
    "value, said",
    [
        ({"$source": {"component": "vpc", "path": "/resource_value/VpcId"}, "x": 1}, "remove x"),
        ({"$source": "vpc"}, "must read"),
        ({"$source": {"component": "vpc"}}, "must read"),
        ({"$source": {"component": "", "path": "/domain/X"}}, "must be a name"),
        ({"$source": {"component": "vpc", "path": "resource_value/VpcId"}}, "not a JSON pointer"),
        ({"$source": {"component": "vpc", "path": "/outputs/VpcId"}}, "/domain, /resource_value or /si"),
    ],
)
def test_malformed_subscriptions_are_refused(value, said):
    data = {
        "components": [
            {"name": "s", "schema": "AWS::EC2::Subnet", "properties": {"Tags": [{"Value": value}]}}
        ]
    }
    message = parse_error(data).message
    assert message.startswith('spec: component #1 ("s"): properties/Tags/0/Value: ')
    assert said in message


def test_every_problem_is_reported_at_once_with_its_path():
    error = parse_error(
        {
            "components": [
                {"name": "a", "schema": "AWS::EC2::VPC", "propertes": {}},
                {"schema": "AWS::EC2::VPC"},
                {"name": "a", "delete": True, "properties": {}},
            ],
            "pipeline": [],
        },
        "cs.yaml",
    )
    assert error.message.startswith("cs.yaml: 5 problems:\n  - ")
    assert [e["path"] for e in error.errors] == [
        "/pipeline",
        "/components/0/propertes",
        "/components/1",
        "/components/2/name",
        "/components/2",
    ]


# --- Dumping ------------------------------------------------------------------------------


def test_dump_has_a_stable_key_order_and_omits_defaults():
    spec = Spec(
        pipelines=[{"x": 1}],
        change_set={"solution": "s", "name": "n"},
        workspace={"region": "us-east-1", "name": "w"},
        components=[
            ComponentSpec(properties={"B": 1, "A": 2}, schema="AWS::EC2::VPC", name="vpc", replace=True),
            ComponentSpec("old", delete=True),
            ComponentSpec("api", replace=True),
        ],
    )
    data = dump_spec(spec)
    assert list(data) == ["workspace", "change_set", "components", "pipelines"]
    assert list(data["workspace"]) == ["name", "region"]
    assert list(data["change_set"]) == ["name", "solution"]
    assert data["components"] == [
        {"name": "vpc", "schema": "AWS::EC2::VPC", "replace": True, "properties": {"B": 1, "A": 2}},
        {"name": "old", "delete": True},
        {"name": "api", "replace": True},
    ]
    assert list(data["components"][0]) == ["name", "schema", "replace", "properties"]
    assert dump_spec(Spec(components=[])) == {"components": []}


def test_dump_does_not_share_data_with_the_spec():
    spec = load_spec(json.dumps({"components": [SUBNET]}))
    data = dump_spec(spec)
    data["components"][0]["properties"]["CidrBlock"] = "changed"
    assert spec.components[0].properties["CidrBlock"] == "10.0.1.0/24"


def test_round_trip_through_dict_json_and_yaml(tmp_path):
    spec = load_spec(FULL_YAML)
    spec.components.append(ComponentSpec("subnet", "AWS::EC2::Subnet", SUBNET["properties"]))
    spec.components.append(ComponentSpec("empty", "AWS::ECS::Cluster", {}))
    assert parse_spec(dump_spec(spec)) == spec
    assert load_spec(json.dumps(dump_spec(spec))) == spec
    assert load_spec(dumps_spec(spec, "json")) == spec
    assert load_spec(dumps_spec(spec, "yaml")) == spec
    for name, fmt in (("again.yaml", "yaml"), ("again.json", "json")):
        assert load_spec(write(tmp_path, name, dumps_spec(spec, fmt))) == spec
    assert dumps_spec(spec) == dumps_spec(load_spec(dumps_spec(spec)))
    with pytest.raises(ValueError):
        dumps_spec(spec, "toml")


def test_the_example_workspace_round_trips():
    path = Path(__file__).resolve().parents[2] / "examples" / "tonys-chips" / "workspace.yaml"
    spec = load_spec(path)
    assert load_spec(dumps_spec(spec, "yaml")) == spec


# --- The schema ---------------------------------------------------------------------------


def test_the_schema_in_docs_is_the_one_the_portal_validates_with():
    root = Path(__file__).resolve().parents[2]
    assert (root / "docs" / "spec.schema.json").resolve() == (root / "portal" / "spec.schema.json").resolve()
    assert json.loads((root / "docs" / "spec.schema.json").read_text(encoding="utf-8")) == SCHEMA
    Draft202012Validator.check_schema(SCHEMA)


def test_a_plain_json_schema_validator_accepts_the_examples_and_refuses_a_bad_spec():
    root = Path(__file__).resolve().parents[2] / "examples" / "tonys-chips"
    validator = Draft202012Validator(SCHEMA)
    for path in sorted(root.glob("*.yaml")):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))) == [], path
    assert not validator.is_valid({"components": [{"name": "old", "delete": True, "replace": True}]})
