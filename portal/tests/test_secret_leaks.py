"""Attack suite: secrets by name, by value and through subscriptions never reach a page,
the admin or the CLI; the editor never puts one into a form; inputs have limits."""

import json
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from portal import changesets, inputs
from portal.errors import ValidationError
from portal.models import AuditEvent, ChangeSetEntry, Component
from portal.plan import plan_actions
from portal.secrets import MASK, UNCHANGED, mask, mask_text
from portal.spec import parse_spec
from portal.tests.factories import head, src

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
STRIPE_KEY = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7yn3bRHQ5FHMQ\n-----END RSA PRIVATE KEY-----"
DB_PASSWORD = "pg-correct-horse-battery"
BY_NAME = {"DB_PASS": "db-pass-0001", "STRIPE_KEY": "stripe-key-0002", "ApiAuth": "api-auth-0003"}
BY_VALUE = {"UPLOADS": AWS_KEY, "PAYMENTS": STRIPE_KEY, "TLS": PEM}
LITERALS = [*BY_NAME.values(), AWS_KEY, STRIPE_KEY, "MIIEowIBAAKCAQEA7yn3bRHQ5FHMQ", DB_PASSWORD]
TEMPLATE = "Portal::StringTemplate"


def env(entries):
    return [{"Name": k, "Value": v} for k, v in entries.items()]


def task(family, environment):
    return {
        "Family": family,
        "ContainerDefinitions": [{"Name": family, "Image": f"{family}:1", "Environment": environment}],
    }


@pytest.fixture
def leaky(workspace, users):
    """HEAD: a database; an API task whose environment holds secrets by name and by value;
    a template that renders the database password into a URL; a web task that reads the
    API's DB_PASS and the rendered URL through subscriptions."""
    bob = users["editor"]
    head(
        workspace,
        bob,
        {
            "db": (
                "AWS::RDS::DBInstance",
                {"Engine": "postgres", "DBInstanceClass": "db.t3.micro", "MasterUserPassword": DB_PASSWORD},
            ),
            "api-task": (
                "AWS::ECS::TaskDefinition",
                task("api", env({**BY_NAME, **BY_VALUE, "PORT": "3000"})),
            ),
            "dsn": (
                TEMPLATE,
                {
                    "Template": "postgres://app@db:5432/shop?sslmode=require&password={{ Pw }}",
                    "Variables": {"Pw": src("db", "/domain/MasterUserPassword")},
                },
            ),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "web")
    web_env = [
        {
            "Name": "UPSTREAM_DB",
            "Value": src("api-task", "/domain/ContainerDefinitions/0/Environment/0/Value"),
        },
        {"Name": "DATABASE_URL", "Value": src("dsn", "/domain/Rendered/Value")},
        {
            "Name": "UPSTREAM_PORT",
            "Value": src("api-task", "/domain/ContainerDefinitions/0/Environment/6/Value"),
        },
    ]
    changesets.upsert_component(cs, bob, "web-task", "AWS::ECS::TaskDefinition", task("web", web_env))
    changesets.merge(cs, bob)
    return workspace


def assert_no_secret(text):
    for secret in LITERALS:
        assert secret not in text


def test_it_masks_by_name_and_by_value():
    masked = mask(env({**BY_NAME, **BY_VALUE, "PORT": "3000"}))
    assert [e["Value"] for e in masked] == [MASK] * 6 + ["3000"]
    assert mask({"GITHUB_TOKEN": "x1", "AdminPassword": "x2", "Name": "api"}) == {
        "GITHUB_TOKEN": MASK,
        "AdminPassword": MASK,
        "Name": "api",
    }
    # A random token is secret by its entropy; ids, ARNs and images are not.
    assert mask("Zx8kQ2pL9mN4vB7cR1tY6wE3uI0oA5sD") == MASK
    for plain in ("vpc-0a1b2c3d4e5f67890", "arn:aws:iam::123456789012:role/api", "nginx:1.25", "10.0.0.0/16"):
        assert mask(plain) == plain
    text = mask_text(f"AWS said: key {AWS_KEY} and {STRIPE_KEY} rejected; DB_PASS=hunter22 ApiAuth: s3cr3t")
    assert_no_secret(text)
    assert "hunter22" not in text and "s3cr3t" not in text and "rejected" in text


def test_masking_several_megabytes_takes_well_under_a_second():
    started = time.process_time()
    mask({"Template": "a" * 3_000_000 + "://u:" + "b" * 1_000_000 + "@"})
    mask_text(("word " * 600_000) + AWS_KEY)
    mask_text("DB_PASS=x:y " * 100_000)
    assert time.process_time() - started < 1.0


def test_every_page_hides_secrets_by_name_value_and_subscription(leaky, users, seat, client):
    bob = users["editor"]
    cs = changesets.create_change_set(leaky, bob, "rotate")
    changesets.set_property(cs, bob, "db", "/MasterUserPassword", "new-" + DB_PASSWORD)
    changesets.set_property(
        cs, bob, "api-task", "/ContainerDefinitions/0/Environment/1/Value", STRIPE_KEY + "x"
    )
    alice = seat("approver")
    slug = leaky.slug
    urls = [reverse("component", args=[slug, n]) for n in ("db", "api-task", "dsn", "web-task")]
    urls += [
        reverse("changeset", args=[slug, cs.pk]),
        reverse("changeset-audit", args=[slug, cs.pk]),
        reverse("audit", args=[slug]),
        reverse("component-edit", args=[slug, cs.pk, "api-task"]) + "?mode=json",
    ]
    for url in urls:
        response = (seat("editor") if "edit" in url else alice).get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert_no_secret(body)
        assert "new-" + DB_PASSWORD not in body
    web = alice.get(reverse("component", args=[slug, "web-task"])).content.decode()
    assert "3000" in web  # a subscribed value that is not secret stays visible


def test_secrecy_travels_through_subscriptions_and_templates(leaky):
    from portal import graph

    view = graph.GraphView(leaky)
    assert graph.derived_secret_paths(view, "dsn") == ["/Variables/Pw", "/Rendered", "/Value"]
    assert graph.derived_secret_paths(view, "web-task") == [
        "/ContainerDefinitions/0/Environment/0/Value",
        "/ContainerDefinitions/0/Environment/1/Value",
    ]


def test_the_plan_warns_of_a_secret_in_a_plain_environment_entry(leaky, users):
    bob = users["editor"]
    cs = changesets.create_change_set(leaky, bob, "web v2")
    changesets.set_property(cs, bob, "web-task", "/ContainerDefinitions/0/Image", "web:2")
    warnings = plan_actions(cs).warnings
    assert {w["path"] for w in warnings if w["component"] == "web-task"} == {
        "/ContainerDefinitions/0/Environment/0/Value",
        "/ContainerDefinitions/0/Environment/1/Value",
    }
    assert all("Secrets" in w["message"] and "ValueFrom" in w["message"] for w in warnings)
    assert_no_secret(json.dumps(plan_actions(cs).as_dict()))


def cli(*argv):
    out = StringIO()
    call_command(*argv, stdout=out)
    return out.getvalue()


def test_the_cli_shows_no_secret_and_warns_of_literals(leaky, users, tmp_path):
    spec = tmp_path / "rotate.json"
    spec.write_text(
        json.dumps(
            {
                "components": [
                    {
                        "name": "worker-task",
                        "schema": "AWS::ECS::TaskDefinition",
                        "properties": task("worker", env({"DB_PASS": "db-pass-0001", "UPLOADS": AWS_KEY})),
                    }
                ]
            }
        )
    )
    created = cli(
        "changeset",
        "create",
        "--workspace",
        leaky.slug,
        "--name",
        "worker",
        "--user",
        "bob",
        "--spec",
        str(spec),
    )
    assert "worker-task/ContainerDefinitions/worker/Environment/DB_PASS/Value holds a secret" in created
    assert "ValueFrom" in created
    cs_id = created.split("#")[1].split()[0]
    for argv in (("changeset", "show", cs_id), ("changeset", "diff", cs_id)):
        for as_json in ((), ("--json",)):
            assert_no_secret(cli(*argv, *as_json))
    assert "WARNING  worker-task" in cli("changeset", "diff", cs_id)


def test_the_admin_shows_json_masked(leaky, admin_client):
    pages = [
        reverse("admin:portal_component_change", args=[Component.objects.get(name=n).pk])
        for n in ("db", "api-task", "dsn", "web-task")
    ]
    pages += [
        reverse("admin:portal_changesetentry_change", args=[e.pk]) for e in ChangeSetEntry.objects.all()
    ]
    pages += [reverse("admin:portal_auditevent_change", args=[e.pk]) for e in AuditEvent.objects.all()]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response.content.decode())
    shown = admin_client.get(pages[1]).content.decode()
    assert MASK in shown and "3000" in shown


# --- The editor --------------------------------------------------------------------------------


def edit_url(cs, name, mode="fields"):
    return reverse("component-edit", args=[cs.workspace.slug, cs.pk, name]) + f"?mode={mode}"


def env_values(name):
    c = Component.objects.get(name=name)
    return c, c.properties["ContainerDefinitions"][0]["Environment"]


def test_the_editor_keeps_a_secret_unless_a_new_one_is_typed(leaky, users, seat):
    bob = seat("editor")
    cs = changesets.create_change_set(leaky, users["editor"], "edit")
    form = bob.get(edit_url(cs, "db")).content.decode()
    assert DB_PASSWORD not in form and UNCHANGED in form
    # Another field changes; the password is kept.
    data = {
        "mode": "fields",
        "p__Engine": "postgres",
        "p__DBInstanceClass": "db.t3.small",
        "p__MasterUserPassword": UNCHANGED,
    }
    assert bob.post(edit_url(cs, "db"), data).status_code == 302
    entry = cs.entries.get(name="db")
    assert entry.properties == {
        "Engine": "postgres",
        "DBInstanceClass": "db.t3.small",
        "MasterUserPassword": DB_PASSWORD,
    }
    # A new one typed replaces it, and the browser is warned it is a literal secret.
    data["p__MasterUserPassword"] = "typed-new-password"
    response = bob.post(edit_url(cs, "db"), data, follow=True)
    assert cs.entries.get(name="db").properties["MasterUserPassword"] == "typed-new-password"
    assert "MasterUserPassword holds a secret in plain text" in response.content.decode()


def test_the_json_editor_swaps_the_placeholder_back(leaky, users, seat):
    bob = seat("editor")
    cs = changesets.create_change_set(leaky, users["editor"], "edit")
    page = bob.get(edit_url(cs, "api-task", "json")).content.decode()
    assert_no_secret(page)
    _, stored = env_values("api-task")
    shown = json.loads(changesets_document(page))
    environment = shown["ContainerDefinitions"][0]["Environment"]
    assert [e["Value"] for e in environment] == [UNCHANGED] * 6 + ["3000"]
    # A new entry moves the others down: each secret is found again by its Name.
    environment.insert(0, {"Name": "LOG_LEVEL", "Value": "debug"})
    shown["ContainerDefinitions"][0]["Image"] = "api:2"
    response = bob.post(edit_url(cs, "api-task", "json"), {"mode": "json", "document": json.dumps(shown)})
    assert response.status_code == 302
    saved = cs.entries.get(name="api-task").properties["ContainerDefinitions"][0]
    assert saved["Image"] == "api:2" and saved["Environment"] == [
        {"Name": "LOG_LEVEL", "Value": "debug"},
        *stored,
    ]


def changesets_document(page):
    import html
    import re

    return html.unescape(re.search(r'<textarea name="document"[^>]*>(.*?)</textarea>', page, re.S)[1])


def test_the_editor_refuses_a_placeholder_with_no_stored_secret(leaky, users, seat):
    bob = seat("editor")
    cs = changesets.create_change_set(leaky, users["editor"], "edit")
    data = {
        "mode": "fields",
        "p__Engine": "postgres",
        "p__DBInstanceClass": UNCHANGED,
        "p__MasterUserPassword": UNCHANGED,
    }
    response = bob.post(edit_url(cs, "db"), data)
    assert response.status_code == 400
    assert "stands for a stored secret, and there is none here" in response.content.decode()
    assert not cs.entries.exists()


# --- Limits ------------------------------------------------------------------------------------


def test_documents_past_a_limit_are_refused_and_nothing_is_saved(leaky, users):
    bob = users["editor"]
    cs = changesets.create_change_set(leaky, bob, "huge")
    long_string = "x" * (inputs.MAX_STRING_LENGTH + 1)
    with pytest.raises(ValidationError, match="limit is 65,536"):
        changesets.set_property(cs, bob, "dsn", "/Template", long_string)
    big = {"Template": "t", "Variables": {f"V{i}": "y" * 60_000 for i in range(20)}}
    with pytest.raises(ValidationError, match="bytes of JSON; the limit is 1,000,000"):
        changesets.upsert_component(cs, bob, "big", TEMPLATE, big)
    assert not cs.entries.exists()
    spec = {"components": [{"name": "big", "schema": TEMPLATE, "properties": {"Template": long_string}}]}
    with pytest.raises(ValidationError, match="limit is 65,536"):
        parse_spec(spec)
