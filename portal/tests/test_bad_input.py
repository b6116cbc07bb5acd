"""Bad input, from the page, the command and the spec file alike: a clear error, nothing
saved, never a 500 or a traceback."""

import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import get_resolver
from django.urls.converters import IntConverter
from django.urls.resolvers import URLResolver

from portal import changesets
from portal.models import AuditEvent, ChangeSet, ChangeSetEntry

from .test_views_changesets import BASE, url

BAD_NAMES = [
    ("api/sg", "holds only letters, digits"),
    ("api sg", "holds only letters, digits"),
    (".hidden", "starts with a letter or a digit"),
    ("x" * 256, "255 characters"),
    ("api\u202egs-bew", "invisible character U+202E"),
    ("api\u2066sg", "invisible character U+2066"),
    ("api\x07sg", "invisible character U+0007"),
]


@pytest.fixture
def empty_cs(shop, users):
    return changesets.create_change_set(shop, users["editor"], "editing")


def new_log_group(name):
    return {
        "schema": "AWS::Logs::LogGroup",
        "mode": "fields",
        "name": name,
        "p__LogGroupName": "/tonys/api",
    }


def nested(depth, leaf="x"):
    return json.loads("[" * depth + json.dumps(leaf) + "]" * depth)


def command(*argv):
    call_command(*argv)


def spec_file(tmp_path, text, name="spec.json"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def create_from_spec(path):
    command(
        "changeset", "create", "--workspace", "tonys-chips", "--name", "bad", "--user", "bob", "--spec", path
    )


def assert_refused(path, message):
    with pytest.raises(CommandError, match=re.escape(message)) as err:
        create_from_spec(path)
    assert err.value.returncode == 2
    assert not ChangeSet.objects.filter(name="bad").exists()


# --- Component names ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_the_editor_refuses_a_name_that_cannot_stand_in_a_url(seat, empty_cs, name, message):
    page = seat("editor").post(url(empty_cs, "components/new/"), new_log_group(name))
    assert page.status_code == 400 and message in page.content.decode()
    assert not empty_cs.entries.exists()
    assert seat("editor").get(url(empty_cs)).status_code == 200


@pytest.mark.parametrize(("name", "message"), BAD_NAMES)
def test_a_spec_with_a_bad_name_saves_nothing(shop, tmp_path, name, message):
    spec = {
        "components": [
            {"name": "logs", "schema": "AWS::Logs::LogGroup", "properties": {}},
            {"name": name, "schema": "AWS::Logs::LogGroup", "properties": {}},
        ]
    }
    assert_refused(spec_file(tmp_path, json.dumps(spec)), message)


def test_names_made_of_the_allowed_alphabet_are_accepted_and_listed(seat, empty_cs):
    client = seat("editor")
    page = client.post(url(empty_cs, "components/new/"), new_log_group("Api_logs-2.v1"))
    assert page.status_code == 302
    assert client.get(url(empty_cs)).status_code == 200
    assert client.get(url(empty_cs, "components/Api_logs-2.v1/edit/")).status_code == 200


def test_a_change_set_name_may_not_hide_characters(seat, shop):
    page = seat("editor").post(f"{BASE}/changesets/new/", {"name": "fix\u202etxt.exe"}, follow=True)
    assert "invisible character U+202E" in page.content.decode()
    assert not ChangeSet.objects.filter(name__startswith="fix").exists()


# --- Deep JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 1000, 100_000])
def test_the_json_editor_refuses_deep_nesting(seat, shop, depth):
    cs = changesets.create_change_set(shop, shop.memberships.get(role="editor").user, "deep")
    document = '{"CidrBlock": "10.0.0.0/16", "Tags": ' + "[" * depth + "]" * depth + "}"
    page = seat("editor").post(url(cs, "components/vpc/edit/"), {"mode": "json", "document": document})
    assert page.status_code == 400 and "nested deeper than 64 levels" in page.content.decode()
    assert not cs.entries.exists()


def test_a_json_field_of_the_form_refuses_deep_nesting(seat, empty_cs):
    data = new_log_group("logs") | {"p__DataProtectionPolicy": "[" * 1000 + "]" * 1000}
    page = seat("editor").post(url(empty_cs, "components/new/"), data)
    assert page.status_code == 400 and "nested deeper than 64 levels" in page.content.decode()
    assert not empty_cs.entries.exists()


@pytest.mark.parametrize("depth", [100, 1000, 100_000])
def test_a_deep_json_spec_is_refused_before_it_is_parsed(shop, tmp_path, depth):
    text = (
        '{"components": [{"name": "vpc", "schema": "AWS::EC2::VPC", "properties": {"Tags": '
        + "[" * depth
        + "]" * depth
        + "}}]}"
    )
    assert_refused(spec_file(tmp_path, text), "nested deeper than 64 levels")


@pytest.mark.parametrize("flow", [True, False])
def test_a_deep_yaml_spec_is_refused_before_it_is_composed(shop, tmp_path, flow):
    if flow:
        deep = "[" * 1000 + "]" * 1000
    else:
        deep = "\n" + "".join(" " * (2 * i + 6) + "- \n" for i in range(200))
    text = f"components:\n  - name: vpc\n    schema: AWS::EC2::VPC\n    properties:\n      Tags: {deep}\n"
    assert_refused(spec_file(tmp_path, text, "spec.yaml"), "nested deeper than 64 levels")


def test_the_domain_refuses_deep_properties_from_any_caller(empty_cs, users):
    with pytest.raises(changesets.ValidationError, match="nested deeper than 64 levels"):
        changesets.upsert_component(
            empty_cs, users["editor"], "logs", "AWS::Logs::LogGroup", {"DataProtectionPolicy": nested(70)}
        )
    assert not ChangeSetEntry.objects.filter(change_set=empty_cs).exists()


# --- Lone surrogates ---------------------------------------------------------------------------


def test_the_json_editor_refuses_a_lone_surrogate(seat, shop, users):
    cs = changesets.create_change_set(shop, users["editor"], "surrogate")
    document = '{"CidrBlock": "10.0.0.0/16", "Tags": [{"Key": "team", "Value": "chips\\ud800"}]}'
    page = seat("editor").post(url(cs, "components/vpc/edit/"), {"mode": "json", "document": document})
    assert page.status_code == 400 and "lone UTF-16 surrogate" in page.content.decode()
    assert not cs.entries.exists()


@pytest.mark.parametrize(
    "fragment",
    [
        '"properties": {"LogGroupName": "/x\\udc00"}',
        '"properties": {"\\ud800": "x"}',
    ],
)
def test_a_spec_with_a_lone_surrogate_saves_nothing(shop, tmp_path, fragment):
    text = '{"components": [{"name": "logs", "schema": "AWS::Logs::LogGroup", ' + fragment + "}]}"
    assert_refused(spec_file(tmp_path, text), "lone UTF-16 surrogate")


def test_a_spec_with_a_lone_surrogate_in_its_text_saves_nothing(shop, tmp_path):
    text = '{"change_set": {"problem": "slow \\ud83d"}, "components": []}'
    assert_refused(spec_file(tmp_path, text), "lone UTF-16 surrogate")
    assert not AuditEvent.objects.filter(verb="changeset.created", target__endswith="bad").exists()


# --- Ids past 64 bits --------------------------------------------------------------------------


@pytest.mark.parametrize("big", ["9223372036854775808", "99999999999999999999999999", "0"])
@pytest.mark.parametrize(
    "path",
    [
        "/changesets/{id}/",
        "/changesets/{id}/audit/",
        "/runs/{id}/progress/",
        "/deployments/runs/{id}/",
        "/deployments/runs/1/stages/{id}/approve/",
        "/buildlogs/{id}/",
    ],
)
def test_an_id_past_64_bits_in_a_url_is_not_found(seat, shop, big, path):
    assert seat("editor").get(BASE + path.format(id=big)).status_code == 404


def test_every_id_in_a_url_goes_through_the_bounded_converter():
    def patterns(resolver):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                yield from patterns(p)
            yield p

    unbounded = [
        str(p.pattern)
        for p in patterns(get_resolver())
        if any(isinstance(c, IntConverter) for c in getattr(p.pattern, "converters", {}).values())
    ]
    assert unbounded == []


@pytest.mark.parametrize("bad", ["9223372036854775808", "0", "-3", "twelve"])
@pytest.mark.parametrize(
    "argv",
    [
        ("changeset", "show", "{id}"),
        ("changeset", "approve", "{id}", "--user", "alice"),
        ("deploy", "show", "{id}"),
        ("buildlog", "show", "{id}"),
        (
            "component",
            "import",
            "--workspace",
            "tonys-chips",
            "--change-set",
            "{id}",
            "--type",
            "AWS::Logs::LogGroup",
            "--id",
            "x",
            "--user",
            "bob",
        ),
    ],
)
def test_an_id_past_64_bits_on_the_command_line_is_invalid_input(shop, argv, bad):
    with pytest.raises(CommandError, match="is not an id: ids are whole numbers from 1 to") as err:
        command(*(a.format(id=bad) for a in argv))
    assert err.value.returncode == 2


def test_the_largest_id_is_simply_not_found(shop):
    with pytest.raises(CommandError, match="No change set 9223372036854775807") as err:
        command("changeset", "show", "9223372036854775807")
    assert err.value.returncode == 3
