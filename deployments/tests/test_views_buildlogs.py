"""The build log pages (history, page, Markdown download, notes, group creation), each
from three seats: alice (approver), bob (editor), mallory (outsider)."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from deployments import buildlogs
from deployments.filters import BuildLogFilter
from deployments.models import BuildLog, PipelineRun, RunStatus
from portal import changesets
from portal.models import AuditEvent, Membership, Role, Workspace
from portal.tests.factories import head


@pytest.fixture
def merged(workspace, bob):
    """Two change sets merged into HEAD (no apply), with a secret in one of them."""
    first = changesets.create_change_set(
        workspace, bob, "add-logs", problem="No log group for the api.", solution="Add /ecs/api."
    )
    changesets.upsert_component(first, bob, "api-logs", "AWS::Logs::LogGroup", {"LogGroupName": "/ecs/api"})
    changesets.merge(first, bob)
    second = changesets.create_change_set(
        workspace, bob, "add-db", problem="The api needs Postgres.", solution="A db.t4g.micro instance."
    )
    changesets.upsert_component(
        second,
        bob,
        "db",
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "DBInstanceClass": "db.t4g.micro",
            "MasterUsername": "chips",
            "MasterUserPassword": "hunter2-chips",
        },
    )
    changesets.merge(second, bob)
    return first, second


@pytest.fixture
def group_log(workspace, alice, merged):
    return buildlogs.create_group(workspace, [c.pk for c in merged], alice, "Database for the api")


def get(client, user, name, *args, **params):
    client.force_login(user)
    return client.get(reverse(f"deployments:{name}", args=args), params)


def post(client, user, name, *args, **data):
    client.force_login(user)
    return client.post(reverse(f"deployments:{name}", args=args), data)


@pytest.mark.parametrize("seat", ["approver", "editor"])
def test_members_read_a_build_log_without_its_secrets(client, users, workspace, group_log, seat):
    page = get(client, users[seat], "buildlog", workspace.slug, group_log.pk)
    body = page.content.decode()
    assert page.status_code == 200
    assert "Database for the api" in body and "Phase 2: add-db" in body and "The api needs Postgres." in body
    assert "MasterUserPassword" in body and "hunter2-chips" not in body
    md = get(client, users[seat], "buildlog-md", workspace.slug, group_log.pk)
    assert md.status_code == 200 and md["Content-Type"] == "text/markdown; charset=utf-8"
    assert (
        md["Content-Disposition"]
        == f'attachment; filename="build-log-{group_log.pk}-database-for-the-api.md"'
    )
    text = md.content.decode()
    assert text.startswith("# Database for the api - Build Log") and "hunter2-chips" not in text


def test_outsiders_get_a_404_for_every_build_log_page(client, users, workspace, group_log, merged):
    mallory = users["outsider"]
    for name, args in [
        ("buildlogs-workspace", [workspace.slug]),
        ("buildlog", [workspace.slug, group_log.pk]),
        ("buildlog-md", [workspace.slug, group_log.pk]),
    ]:
        assert get(client, mallory, name, *args).status_code == 404, name
    assert (
        post(client, mallory, "buildlog-notes", workspace.slug, group_log.pk, lessons="x").status_code == 404
    )
    assert (
        post(client, mallory, "buildlog-create", workspace.slug, change_sets=[merged[0].pk]).status_code
        == 404
    )
    # A build log of another workspace is not reachable through one's own workspace either.
    other = Workspace.objects.get(slug="other")
    assert get(client, mallory, "buildlog", other.slug, group_log.pk).status_code == 404
    history = get(client, mallory, "buildlogs").content.decode()
    assert "Database for the api" not in history
    assert BuildLog.objects.count() == 1


@pytest.mark.parametrize("seat", ["approver", "editor"])
def test_editors_write_lessons_and_next_steps_and_it_is_audited(client, users, workspace, group_log, seat):
    response = post(
        client,
        users[seat],
        "buildlog-notes",
        workspace.slug,
        group_log.pk,
        lessons="Managed passwords beat literals",
        next_steps="Rotate the master password",
    )
    assert response.status_code == 302
    group_log.refresh_from_db()
    assert group_log.lessons == "Managed passwords beat literals"
    event = AuditEvent.objects.get(verb="buildlog.edited")
    assert event.actor == users[seat] and event.after["next_steps"] == "Rotate the master password"
    assert (
        "## Lessons Learned\n\nManaged passwords beat literals"
        in get(client, users[seat], "buildlog-md", workspace.slug, group_log.pk).content.decode()
    )
    assert BuildLogFilter({"q": "rotate master"}, BuildLog.objects.all()).qs.get() == group_log


def test_viewers_read_but_do_not_write(client, django_user_model, workspace, group_log):
    viewer = django_user_model.objects.create_user("victor", password="pw-victor-123")
    Membership.objects.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    assert get(client, viewer, "buildlog", workspace.slug, group_log.pk).status_code == 200
    assert (
        post(client, viewer, "buildlog-notes", workspace.slug, group_log.pk, lessons="x").status_code == 403
    )
    assert (
        "Write the build log"
        not in get(client, viewer, "buildlogs-workspace", workspace.slug).content.decode()
    )


@pytest.mark.parametrize("seat", ["approver", "editor"])
def test_editors_write_a_build_log_for_the_change_sets_they_pick(client, users, workspace, merged, seat):
    page = get(client, users[seat], "buildlogs-workspace", workspace.slug).content.decode()
    assert "Write the build log" in page and "add-db" in page
    response = post(
        client,
        users[seat],
        "buildlog-create",
        workspace.slug,
        change_sets=[merged[1].pk, merged[0].pk],
        title="Data tier",
    )
    log = BuildLog.objects.get()
    assert response["Location"] == reverse("deployments:buildlog", args=[workspace.slug, log.pk])
    assert [p["change_set"]["name"] for p in log.data["phases"]] == ["add-logs", "add-db"]  # in merge order
    assert log.author == users[seat] and AuditEvent.objects.filter(verb="buildlog.created").exists()


def test_picking_no_change_set_is_refused_with_a_message(client, users, workspace):
    response = post(client, users["editor"], "buildlog-create", workspace.slug)
    assert response.status_code == 302
    assert "Pick at least one change set." in client.get(response["Location"]).content.decode()


def test_the_history_filters_by_workspace_status_component_author_date_and_words(
    client, users, workspace, bob, alice, merged
):
    logs = buildlogs.create_group(workspace, [merged[0].pk], alice, "Logs only")
    db = buildlogs.create_group(workspace, [merged[1].pk], bob, "Database only")
    mine = Workspace.objects.get(slug="other")
    head(mine, users["outsider"], {"queue": ("AWS::SQS::Queue", {"QueueName": "orders"})})
    BuildLog.objects.filter(pk=logs.pk).update(date=timezone.now() - timedelta(days=10))

    def titles(**params):
        body = get(client, alice, "buildlogs", **params).content.decode()
        return [t for t in ("Logs only", "Database only") if t in body]

    assert titles() == ["Logs only", "Database only"]
    assert titles(workspace="tonys-chips", component="api-logs") == ["Logs only"]
    assert titles(component="db") == ["Database only"]
    assert titles(author="bob") == ["Logs only", "Database only"]  # bob wrote both change sets
    assert titles(q="postgres micro") == ["Database only"]
    assert titles(status="partial") == []
    assert titles(**{"from": (timezone.now() - timedelta(days=1)).date().isoformat()}) == ["Database only"]
    assert titles(**{"to": (timezone.now() - timedelta(days=5)).date().isoformat()}) == ["Logs only"]
    workspace_page = get(client, bob, "buildlogs-workspace", workspace.slug, q="postgres").content.decode()
    assert "Database only" in workspace_page and "Logs only" not in workspace_page
    assert db.status == "completed"


def test_links_from_a_component_a_change_set_and_a_deployment(workspace, merged, group_log):
    from django.template.loader import render_to_string

    from portal.models import Component

    db = Component.objects.get(name="db")
    assert list(buildlogs.for_component(db)) == [group_log]
    assert list(buildlogs.for_change_set(merged[0])) == [group_log]
    html = render_to_string("deployments/_buildlog_links.html", {"build_logs": buildlogs.for_component(db)})
    assert reverse("deployments:buildlog", args=[workspace.slug, group_log.pk]) in html
    assert "No build logs yet." in render_to_string(
        "deployments/_buildlog_links.html", {"build_logs": BuildLog.objects.none()}
    )


def test_bad_filter_values_give_an_answer_not_a_500(client, alice, workspace, merged, group_log):
    def titles(**params):
        response = get(client, alice, "buildlogs", **params)
        assert response.status_code == 200
        return [log.title for log in response.context["logs"]], response.content.decode()

    assert titles(status="sideways")[0] == []  # an unknown status finds nothing, as before
    assert titles(workspace="nowhere")[0] == []
    found, text = titles(**{"from": "last tuesday", "q": "database"})
    assert found == ["Database for the api"]  # the date is left out, the words still apply
    assert "from: Enter a valid date." in text
    assert 'value="database"' in text  # the form shows what was asked


def test_the_build_log_pager_keeps_the_filters(client, alice, workspace, merged):
    for i in range(31):
        buildlogs.create_group(workspace, [merged[0].pk], alice, f"Logs {i}")
    response = get(client, alice, "buildlogs-workspace", workspace.slug, component="api-logs")
    assert response.context["logs"].paginator.count == 31
    assert "component=api-logs&amp;page=2" in response.content.decode()
    second = get(client, alice, "buildlogs-workspace", workspace.slug, component="api-logs", page=2)
    assert [log.title for log in second.context["logs"]] == ["Logs 0"]


def test_a_deployment_build_log_names_the_change_sets_and_head_version_it_shipped(
    client, alice, workspace, merged
):
    first, second = merged
    for instance in (first, second, workspace):
        instance.refresh_from_db()
    pipeline = {
        "workspace": workspace,
        "pipeline": "web",
        "pipeline_id": uuid.uuid4(),
        "status": RunStatus.SUCCEEDED,
    }
    before = PipelineRun.objects.create(**pipeline, head_version=first.merged_version)
    run = PipelineRun.objects.create(**pipeline, head_version=workspace.head_version)
    buildlogs.for_deployment(before)
    log = buildlogs.for_deployment(run)

    body = get(client, alice, "buildlog", workspace.slug, log.pk).content.decode()
    header = body.split('id="buildlog-change-sets"')[1].split("</p>")[0]
    assert "add-db" in header and "add-logs" not in header  # add-logs shipped with the run before
    assert f"<strong>HEAD:</strong> v{second.merged_version}" in header
    assert list(log.change_sets.all()) == [second]
    text = get(client, alice, "buildlog-md", workspace.slug, log.pk).content.decode()
    assert f"**Change Sets:**\n- `add-db`\n\n**HEAD Version:** v{second.merged_version}" in text


def test_user_markdown_is_rendered_without_raw_html_or_unsafe_links(client, bob, workspace, group_log):
    buildlogs.update_notes(
        group_log,
        bob,
        lessons="1. **Always check** the `ServiceRegistries` limit\n2. <script>alert(1)</script>",
        next_steps="[docs](https://example.com/docs) and [bad](javascript:alert(1))",
    )
    body = get(client, bob, "buildlog", workspace.slug, group_log.pk).content.decode()
    assert "<strong>Always check</strong> the <code>ServiceRegistries</code> limit" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert '<a href="https://example.com/docs" rel="nofollow noopener noreferrer">docs</a>' in body
    assert 'href="javascript:' not in body


def test_the_build_log_search_is_a_shareable_url(client, alice, workspace, merged, group_log):
    page = get(client, alice, "buildlogs-workspace", workspace.slug, q="postgres")
    body = page.content.decode()
    assert 'method="get"' in body and 'value="postgres"' in body
    assert "Database for the api" in body
    assert reverse("deployments:buildlogs-workspace", args=[workspace.slug]) in body.split("</nav>")[0]


def test_a_build_log_names_list_items_by_their_key(client, workspace, bob, alice):
    task = {
        "Family": "web",
        "ContainerDefinitions": [
            {
                "Name": "web",
                "Image": "web:1",
                "Environment": [{"Name": "API_URL", "Value": "http://alb:3000"}],
            }
        ],
    }
    head(workspace, bob, {"web-task": ("AWS::ECS::TaskDefinition", task)})
    cs = changesets.create_change_set(workspace, bob, "service-discovery")
    changesets.set_property(
        cs, bob, "web-task", "/ContainerDefinitions/0/Environment/0/Value", "http://api.local"
    )
    changesets.merge(cs, bob)
    log = buildlogs.create_group(workspace, [cs.pk], alice, "Service discovery")
    body = get(client, alice, "buildlog", workspace.slug, log.pk).content.decode()
    text = get(client, alice, "buildlog-md", workspace.slug, log.pk).content.decode()
    for shown in (body, text):
        assert "/ContainerDefinitions/web/Environment/API_URL/Value" in shown
        assert "/ContainerDefinitions/0/" not in shown
