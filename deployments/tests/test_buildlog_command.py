"""manage.py buildlog: create (a group of change sets), list, show as Markdown or JSON."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from deployments.models import BuildLog
from portal import changesets


def run(*argv):
    out = StringIO()
    call_command(*argv, stdout=out)
    return out.getvalue()


@pytest.fixture
def merged(workspace, bob):
    out = []
    for name, group in [("add-api-logs", "/ecs/api"), ("add-web-logs", "/ecs/web")]:
        cs = changesets.create_change_set(
            workspace, bob, name, problem=f"No {group}.", solution=f"Add {group}."
        )
        changesets.upsert_component(cs, bob, name[4:], "AWS::Logs::LogGroup", {"LogGroupName": group})
        changesets.merge(cs, bob)
        out.append(cs)
    return out


def test_it_writes_lists_and_shows_a_group_build_log(workspace, merged):
    ids = ",".join(str(cs.pk) for cs in merged)
    out = run(
        "buildlog",
        "create",
        "--workspace",
        "tonys-chips",
        "--change-sets",
        ids,
        "--user",
        "bob",
        "--title",
        "Logs",
    )
    log = BuildLog.objects.get()
    assert out == f"Wrote build log #{log.pk} Logs (completed): add-api-logs, add-web-logs.\n"
    listed = run("buildlog", "list", "--workspace", "tonys-chips")
    assert f"#{log.pk}" in listed and "completed" in listed and "group" in listed
    assert (
        run("buildlog", "list", "--workspace", "tonys-chips", "--component", "nothing-like-it")
        == "No build logs.\n"
    )
    md = run("buildlog", "show", str(log.pk))
    assert md.startswith("# Logs - Build Log\n") and "## Phase 2: add-web-logs" in md
    shown = json.loads(run("buildlog", "show", str(log.pk), "--format", "json"))
    assert shown["change_sets"] == ["add-api-logs", "add-web-logs"]
    assert shown["phases"][0]["components"]["created"][0]["properties"] == {"LogGroupName": "/ecs/api"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("buildlog", "create", "--workspace", "tonys-chips", "--change-sets", "a,b", "--user", "bob"),
            "ids separated by commas",
        ),
        (
            ("buildlog", "create", "--workspace", "tonys-chips", "--change-sets", "999", "--user", "bob"),
            "No change set #999",
        ),
        (
            ("buildlog", "create", "--workspace", "tonys-chips", "--change-sets", "1", "--user", "mallory"),
            "No workspace",
        ),
        (("buildlog", "show", "999"), "No build log 999"),
        (("buildlog", "list", "--workspace", "nope"), "No workspace 'nope'"),
    ],
)
def test_it_explains_what_is_wrong(workspace, argv, message):
    with pytest.raises(CommandError, match=message):
        run(*argv)
