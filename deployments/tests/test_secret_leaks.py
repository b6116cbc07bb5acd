"""Attack suite: a build log (page, Markdown, `buildlog show`) hides secrets by name and by
value, in the change sets' properties and in what their problem and solution quote."""

from io import StringIO

from django.core.management import call_command
from django.urls import reverse

from deployments import buildlogs
from portal import changesets

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
STRIPE_KEY = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7yn3bRHQ5FHMQ\n-----END RSA PRIVATE KEY-----"
SECRETS = [
    "db-pass-0001",
    "stripe-key-0002",
    "api-auth-0003",
    AWS_KEY,
    STRIPE_KEY,
    "MIIEowIBAAKCAQEA7yn3bRHQ5FHMQ",
]


def test_a_build_log_shows_no_secret(client, workspace, bob, alice):
    environment = [
        {"Name": "DB_PASS", "Value": "db-pass-0001"},
        {"Name": "STRIPE_KEY", "Value": "stripe-key-0002"},
        {"Name": "ApiAuth", "Value": "api-auth-0003"},
        {"Name": "UPLOADS", "Value": AWS_KEY},
        {"Name": "PAYMENTS", "Value": STRIPE_KEY},
        {"Name": "TLS", "Value": PEM},
        {"Name": "PORT", "Value": "3000"},
    ]
    cs = changesets.create_change_set(
        workspace,
        bob,
        "api-env",
        problem=f"The key {AWS_KEY} leaked.",
        solution="Rotate DB_PASS=db-pass-0001.",
    )
    task = {
        "Family": "api",
        "ContainerDefinitions": [{"Name": "api", "Image": "api:1", "Environment": environment}],
    }
    changesets.upsert_component(cs, bob, "api-task", "AWS::ECS::TaskDefinition", task)
    changesets.merge(cs, bob)
    log = buildlogs.create_group(workspace, [cs.pk], alice, "Environment")

    client.force_login(alice)
    shown = [
        client.get(reverse("deployments:buildlog", args=[workspace.slug, log.pk])).content.decode(),
        client.get(reverse("deployments:buildlog-md", args=[workspace.slug, log.pk])).content.decode(),
    ]
    for argv in (("buildlog", "show", str(log.pk)), ("buildlog", "show", str(log.pk), "--format", "json")):
        out = StringIO()
        call_command(*argv, stdout=out)
        shown.append(out.getvalue())
    for text in shown:
        assert "api-task" in text and "3000" in text
        for secret in SECRETS:
            assert secret not in text
