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
    assert shown["apply_concurrency"] == 64  # the portal's default
    capped = run_json("workspace", "create", "slow-account", "--apply-concurrency", "4")
    assert capped["apply_concurrency"] == 4
    assert AuditEvent.objects.filter(verb="workspace.member_set", target="bob").exists()


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (("workspace", "create", "tonys-chips"), "already exists", 2),
        (("workspace", "create", "Bad Slug"), "not a valid slug", 2),
        (("workspace", "create", "x", "--approvals-required", "-1"), "0 or more", 2),
        (("workspace", "create", "x", "--apply-concurrency", "0"), "between 1 and 512", 2),
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


# --- Approving exactly what was read ------------------------------------------------------------


def _pending(spec_file):
    created = run_json(
        "changeset",
        "create",
        "--workspace",
        "tonys-chips",
        "--name",
        "open-port",
        "--user",
        "bob",
        "--spec",
        spec_file(
            {"components": [{"name": "web-sg", "schema": SG, "properties": {"GroupDescription": "web"}}]}
        ),
    )
    run("changeset", "request-approval", str(created["id"]), "--user", "bob")
    return str(created["id"])


SG = "AWS::EC2::SecurityGroup"


def test_show_and_diff_print_the_checksum_an_approver_approves(workspace, spec_file):
    cs_id = _pending(spec_file)
    shown = run_json("changeset", "show", cs_id)["checksum"]
    assert run_json("changeset", "diff", cs_id)["checksum"] == shown
    assert f"checksum: {shown}" in run("changeset", "show", cs_id)
    assert f"checksum: {shown}" in run("changeset", "diff", cs_id)
    out = run_json("changeset", "approve", cs_id, "--user", "alice", "--checksum", shown)
    assert out["status"] == "approved"
    assert ChangeSet.objects.get(pk=cs_id).approvals.get().checksum == shown


def test_it_refuses_to_approve_a_checksum_the_change_set_moved_past(workspace, spec_file):
    cs_id = _pending(spec_file)
    seen = run_json("changeset", "diff", cs_id)["checksum"]
    edit = {"components": [{"name": "web-sg", "schema": SG, "properties": {"GroupDescription": "edited"}}]}
    run("changeset", "update", cs_id, "--spec", spec_file(edit), "--user", "bob")
    with pytest.raises(
        CommandError, match="changed since you reviewed it: its components were edited"
    ) as err:
        run("changeset", "approve", cs_id, "--user", "alice", "--checksum", seen)
    assert err.value.returncode == 5
    assert not ChangeSet.objects.get(pk=cs_id).approvals.exists()
    with pytest.raises(CommandError, match="not a change-set checksum") as err:
        run("changeset", "approve", cs_id, "--user", "alice", "--checksum", "yes")
    assert err.value.returncode == 2


def test_a_reject_records_the_checksum_it_was_given(workspace, spec_file):
    cs_id = _pending(spec_file)
    seen = run_json("changeset", "show", cs_id)["checksum"]
    out = run_json(
        "changeset", "reject", cs_id, "--user", "alice", "--comment", "too open", "--checksum", seen
    )
    assert out["status"] == "rejected"
    assert ChangeSet.objects.get(pk=cs_id).approvals.get().checksum == seen


# --- Updating a change set from a spec ----------------------------------------------------------


def test_it_updates_a_change_set_from_a_spec(workspace, spec_file):
    cs_id = _pending(spec_file)
    spec = {
        "change_set": {"solution": "a web tier group and its logs"},
        "components": [
            {"name": "web-sg", "schema": SG, "properties": {"GroupDescription": "web tier"}},
            {"name": "web-logs", "schema": "AWS::Logs::LogGroup", "properties": {"LogGroupName": "/web"}},
        ],
    }
    out = run("changeset", "update", cs_id, "--spec", spec_file(spec), "--user", "bob")
    assert out == f"Updated change set #{cs_id} open-port in tonys-chips: 2 component change(s).\n"
    cs = ChangeSet.objects.get(pk=cs_id)
    assert {e.name: e.properties for e in cs.entries.all()} == {
        "web-sg": {"GroupDescription": "web tier"},
        "web-logs": {"LogGroupName": "/web"},
    }
    assert cs.solution == "a web tier group and its logs"
    shown = run_json("changeset", "show", cs_id)
    assert [c["name"] for c in shown["components"]] == ["web-logs", "web-sg"]


def test_an_update_with_one_bad_component_saves_nothing(workspace, spec_file):
    cs_id = _pending(spec_file)
    before = run_json("changeset", "show", cs_id)
    spec = {
        "change_set": {"problem": "should not be saved"},
        "components": [
            {"name": "web-logs", "schema": "AWS::Logs::LogGroup", "properties": {"LogGroupName": "/web"}},
            {"name": "web-sg", "schema": SG, "properties": {"GroupDescription": "x", "Bogus": 1}},
        ],
    }
    with pytest.raises(CommandError, match="web-sg/Bogus") as err:
        run("changeset", "update", cs_id, "--spec", spec_file(spec), "--user", "bob")
    assert err.value.returncode == 2
    assert run_json("changeset", "show", cs_id) == before


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (("999", "--user", "bob"), "No change set 999", 3),
        (("{id}", "--user", "mallory"), "No change set", 3),
        (("{id}", "--user", "ghost"), "No user named 'ghost'", 3),
        (("{id}", "--user", "alice", "--spec", "/nonexistent.json"), "nonexistent.json", 2),
    ],
)
def test_update_fails_with_a_clear_message_and_exit_code(workspace, spec_file, users, argv, message, code):
    cs_id = _pending(spec_file)
    spec = spec_file({"components": []})
    argv = [a.format(id=cs_id) for a in argv]
    if "--spec" not in argv:
        argv += ["--spec", spec]
    with pytest.raises(CommandError, match=message) as err:
        run("changeset", "update", *argv)
    assert err.value.returncode == code


def test_update_refuses_a_viewer_and_a_change_set_that_is_no_longer_editable(workspace, spec_file, users):
    cs_id = _pending(spec_file)
    run("workspace", "add-member", "tonys-chips", "mallory", "viewer")
    empty = spec_file({"components": []})
    with pytest.raises(CommandError, match="this needs editor or above") as err:
        run("changeset", "update", cs_id, "--spec", empty, "--user", "mallory")
    assert err.value.returncode == 4
    run("changeset", "abandon", cs_id, "--user", "bob")
    with pytest.raises(CommandError, match="can no longer be edited") as err:
        run("changeset", "update", cs_id, "--spec", empty, "--user", "bob")
    assert err.value.returncode == 5
