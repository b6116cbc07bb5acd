import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from portal.models import AuditEvent, ChangeSet, Component, Workspace

from .factories import src


def run(*argv):
    out = StringIO()
    call_command(*argv, stdout=out)
    return out.getvalue()


def run_json(*argv):
    return json.loads(run(*argv, "--json"))


@pytest.fixture
def spec_file(tmp_path):
    def write(data, name="spec.json"):
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return str(path)

    return write


def test_it_creates_a_workspace_and_adds_members(users):
    out = run_json("workspace", "create", "shop", "--region", "eu-west-1", "--approvals-required", "2")
    assert (out["slug"], out["region"], out["approvals_required"]) == ("shop", "eu-west-1", 2)
    assert "bob is now editor in shop" in run("workspace", "add-member", "shop", "bob", "editor")
    shown = run_json("workspace", "show", "shop")
    assert shown["members"] == [{"user": "bob", "role": "editor"}]
    assert AuditEvent.objects.filter(verb="workspace.member_set", target="bob").exists()


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (("workspace", "create", "tonys-chips"), "already exists", 2),
        (("workspace", "create", "Bad Slug"), "not a valid slug", 2),
        (("workspace", "create", "x", "--approvals-required", "-1"), "0 or more", 2),
        (("workspace", "add-member", "nope", "bob", "editor"), "No workspace 'nope'", 3),
        (("workspace", "add-member", "tonys-chips", "nobody", "editor"), "No user named 'nobody'", 3),
        (("workspace", "add-member", "tonys-chips", "bob", "boss"), "Unknown role 'boss'", 2),
        (("workspace", "show", "nope"), "No workspace 'nope'", 3),
        (("workspace", "export", "nope"), "No workspace 'nope'", 3),
        (("changeset", "show", "999"), "No change set 999", 3),
        (("changeset", "diff", "999"), "No change set 999", 3),
        (("changeset", "abandon", "999", "--user", "bob"), "No change set 999", 3),
        (
            ("changeset", "create", "--workspace", "nope", "--name", "x", "--user", "bob"),
            "No workspace 'nope'",
            3,
        ),
        (
            ("changeset", "create", "--workspace", "tonys-chips", "--name", "x", "--user", "mallory"),
            "No workspace",
            3,
        ),
        (
            ("changeset", "create", "--workspace", "tonys-chips", "--name", "x", "--user", "ghost"),
            "No user named",
            3,
        ),
        (
            (
                "changeset",
                "create",
                "--workspace",
                "tonys-chips",
                "--name",
                "x",
                "--user",
                "bob",
                "--spec",
                "/nonexistent.json",
            ),
            "nonexistent.json",
            2,
        ),
    ],
)
def test_it_fails_with_a_clear_message_and_exit_code(workspace, argv, message, code):
    with pytest.raises(CommandError, match=message) as err:
        run(*argv)
    assert err.value.returncode == code


def test_it_creates_a_change_set_from_a_spec_and_shows_diff_and_plan(workspace, spec_file):
    path = spec_file(
        {
            "change_set": {"problem": "no network", "solution": "add a VPC"},
            "components": [
                {"name": "vpc", "schema": "AWS::EC2::VPC", "properties": {"CidrBlock": "10.0.0.0/16"}},
                {
                    "name": "sg",
                    "schema": "AWS::EC2::SecurityGroup",
                    "properties": {"GroupDescription": "api", "VpcId": src("vpc", "/resource_value/VpcId")},
                },
            ],
        }
    )
    created = run_json(
        "changeset",
        "create",
        "--workspace",
        "tonys-chips",
        "--name",
        "network",
        "--user",
        "bob",
        "--spec",
        path,
    )
    assert created["problem"] == "no network"
    assert [c["name"] for c in created["components"]] == ["sg", "vpc"]
    diff = run_json("changeset", "diff", str(created["id"]))
    assert [a["key"] for a in diff["plan"]["actions"]] == ["create:vpc", "create:sg"]
    sg_changes = {c["path"]: c for c in diff["diff"][0]["changes"]}
    assert sg_changes["/VpcId"]["new"] == src("vpc", "/resource_value/VpcId")
    text = run("changeset", "diff", str(created["id"]))
    assert "create   sg: added in this change set (after create:vpc)" in text


def test_it_saves_nothing_from_an_invalid_spec(workspace, spec_file):
    path = spec_file(
        {
            "components": [
                {"name": "vpc", "schema": "AWS::EC2::VPC", "properties": {"CidrBlock": "10.0.0.0/16"}},
                {
                    "name": "sg",
                    "schema": "AWS::EC2::SecurityGroup",
                    "properties": {"GroupDescription": "x", "Bogus": 1},
                },
            ]
        }
    )
    with pytest.raises(CommandError, match="sg/Bogus"):
        run(
            "changeset",
            "create",
            "--workspace",
            "tonys-chips",
            "--name",
            "bad",
            "--user",
            "bob",
            "--spec",
            path,
        )
    assert not ChangeSet.objects.filter(name="bad").exists()


def test_it_abandons_and_shows(workspace):
    created = run_json("changeset", "create", "--workspace", "tonys-chips", "--name", "tmp", "--user", "bob")
    assert "Abandoned change set" in run("changeset", "abandon", str(created["id"]), "--user", "bob")
    assert run_json("changeset", "show", str(created["id"]))["status"] == "abandoned"


def test_it_exports_a_spec_that_reimports_to_the_same_model(workspace, spec_file, users):
    path = spec_file(
        {
            "components": [
                {"name": "vpc", "schema": "AWS::EC2::VPC", "properties": {"CidrBlock": "10.0.0.0/16"}},
                {
                    "name": "sg",
                    "schema": "AWS::EC2::SecurityGroup",
                    "properties": {"GroupDescription": "api", "VpcId": src("vpc", "/resource_value/VpcId")},
                },
            ]
        }
    )
    run("workspace", "import", "tonys-chips", "--spec", path, "--user", "bob")
    exported = run_json("workspace", "export", "tonys-chips")
    run("workspace", "create", "copy")
    run("workspace", "add-member", "copy", "bob", "editor")
    run("workspace", "import", "copy", "--spec", spec_file(exported, "exported.json"), "--user", "bob")

    def model(slug):
        ws = Workspace.objects.get(slug=slug)
        return sorted(
            (c.name, c.schema, json.dumps(c.properties, sort_keys=True))
            for c in Component.objects.filter(workspace=ws)
        )

    assert model("copy") == model("tonys-chips")
    assert run_json("workspace", "export", "copy")["components"] == exported["components"]
