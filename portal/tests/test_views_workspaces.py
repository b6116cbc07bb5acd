"""The site home and the workspace home: components, action queue, open change sets,
deployments, the no-worker banner."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal import approvals, changesets
from workers.models import Action, ActionStatus, ApplyRun, RunStatus, WorkerHeartbeat

from .test_views_changesets import BASE, _bulk_components


def test_it_links_the_users_workspaces_from_the_site_home(seat, shop):
    text = seat("editor").get("/").content.decode()
    assert 'href="/workspaces/tonys-chips/"' in text and "/workspaces/other/" not in text


def test_it_sends_anonymous_users_to_sign_in(client, shop):
    for path in ("/", f"{BASE}/", f"{BASE}/queue/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_shows_the_workspace_home_to_members(seat, shop, who):
    page = seat(who).get(f"{BASE}/")
    assert page.status_code == 200
    assert [c.name for c in page.context["components"]] == ["api-sg", "db", "vpc"]


def test_it_hides_the_workspace_home_from_outsiders(seat, shop):
    client = seat("outsider")
    assert client.get(f"{BASE}/").status_code == 404
    assert client.get(f"{BASE}/queue/").status_code == 404
    assert client.get("/workspaces/nowhere/").status_code == 404


def test_it_filters_components_by_name_type_and_status(seat, shop):
    client = seat("editor")

    def names(query):
        return [c.name for c in client.get(f"{BASE}/{query}").context["components"]]

    assert names("?name=sg") == ["api-sg"]
    assert names("?type=AWS::EC2::VPC") == ["vpc"]
    assert names("?status=ok") == ["vpc"]
    partial = client.get(f"{BASE}/?name=db", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="components")
    assert b"<html" not in partial.content and b">db</a>" in partial.content


def test_it_lists_open_change_sets(seat, change_set):
    text = seat("approver").get(f"{BASE}/").content.decode()
    assert "open-port-3000" in text and f"/changesets/{change_set.pk}/" in text


def test_it_lists_recent_deployments_with_links(seat, shop):
    from deployments.models import PipelineRun

    page = seat("editor").get(f"{BASE}/deployments/recent/")
    assert list(page.context["deployments"]) == []
    assert "No deployments yet." in page.content.decode()
    run = PipelineRun.objects.create(workspace=shop, pipeline="deploy", status="succeeded")
    html = seat("editor").get(f"{BASE}/deployments/recent/").content.decode()
    assert (
        f'href="/workspaces/{shop.slug}/deployments/runs/{run.pk}/"' in html and f"#{run.pk} deploy" in html
    )


def test_it_warns_when_no_worker_has_reported_recently(seat, shop, settings):
    client = seat("editor")
    assert "No worker is running." in client.get(f"{BASE}/heartbeat/").content.decode()
    WorkerHeartbeat.objects.create(
        name="w1:1",
        last_seen=timezone.now() - timedelta(seconds=settings.PORTAL_WORKER_HEARTBEAT_STALE_SECONDS + 5),
    )
    assert "last seen" in client.get(f"{BASE}/heartbeat/").content.decode()
    WorkerHeartbeat.objects.update(last_seen=timezone.now())
    assert "No worker is running." not in client.get(f"{BASE}/heartbeat/").content.decode()


@pytest.fixture
def queue(change_set, users):
    run = ApplyRun.objects.create(
        workspace=change_set.workspace, change_set=change_set, status=RunStatus.RUNNING
    )
    sg = change_set.entries.get(name="api-sg")

    def make(key, status, **kw):
        kind, name = key.split(":")
        return Action.objects.create(
            run=run,
            key=key,
            kind=kind,
            component_name=name,
            component_id=sg.component_id,
            schema=sg.schema,
            status=status,
            **kw,
        )

    return run, [
        make("update:api-sg", ActionStatus.FAILED, error="throttled for good"),
        make("create:web-sg", ActionStatus.RUNNING),
        make("update:db", ActionStatus.QUEUED),
        make("delete:old", ActionStatus.SUCCEEDED),
    ]


def test_it_shows_queued_running_and_failed_actions(seat, queue):
    page = seat("editor").get(f"{BASE}/queue/")
    assert sorted(a.key for a in page.context["queue"]["actions"]) == [
        "create:web-sg",
        "update:api-sg",
        "update:db",
    ]
    text = page.content.decode()
    assert "throttled for good" in text and 'hx-get="/workspaces/tonys-chips/queue/"' in text


def test_it_offers_retry_and_cancel_of_failed_actions_to_approvers(seat, queue):
    _, (failed, *_rest) = queue
    assert f"/actions/{failed.pk}/retry/" in seat("approver").get(f"{BASE}/queue/").content.decode()
    assert f"/actions/{failed.pk}/retry/" not in seat("editor").get(f"{BASE}/queue/").content.decode()


def test_it_serves_the_queue_partial(seat, queue):
    partial = seat("editor").get(f"{BASE}/queue/", HTTP_HX_REQUEST="true")
    assert (
        partial.status_code == 200 and b"<html" not in partial.content and b"update:db" not in partial.content
    )
    assert b"api-sg" in partial.content


def test_it_renders_the_home_in_a_flat_number_of_queries(seat, users, django_assert_max_num_queries):
    from portal.models import Membership, Role, Workspace

    counts = []
    for n in (100, 1000):
        ws = Workspace.objects.create(slug=f"big-{n}", name=f"big {n}")
        Membership.objects.create(workspace=ws, user=users["editor"], role=Role.EDITOR)
        _bulk_components(ws, n)
        changesets.create_change_set(ws, users["editor"], "open one")
        client = seat("editor")
        with django_assert_max_num_queries(20) as captured:
            assert client.get(f"/workspaces/big-{n}/").status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts


def test_the_home_page_shows_what_waits_for_each_user(seat, change_set, users):
    alice, bob = users["approver"], users["editor"]
    approvals.request_approval(change_set, bob)
    rejected = changesets.create_change_set(change_set.workspace, bob, "tighten-db")
    changesets.set_property(rejected, bob, "db", "/DBInstanceClass", "db.t3.small")
    approvals.request_approval(rejected, bob)
    approvals.reject(rejected, alice, "too small")

    for_alice = seat("approver").get("/")
    assert [cs.name for cs in for_alice.context["to_approve"]] == ["open-port-3000"]
    assert f'href="{BASE}/changesets/{change_set.pk}/#approvals"' in for_alice.content.decode()
    for_bob = seat("editor").get("/")
    assert for_bob.context["to_approve"] == []  # he wrote it
    assert [cs.name for cs in for_bob.context["mine"]] == ["tighten-db"]
    assert "Nothing waits for your approval." in for_bob.content.decode()

    approvals.approve(change_set, alice, "ok")
    assert seat("approver").get("/").context["to_approve"] == []


def test_the_home_page_lists_own_change_sets_in_conflict(seat, change_set, users):
    bob = users["editor"]
    other = changesets.create_change_set(change_set.workspace, bob, "other-port")
    changesets.set_property(
        other,
        bob,
        "api-sg",
        "/SecurityGroupIngress",
        [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"}],
    )
    changesets.merge(other, bob)
    changesets.rebase(change_set, bob)
    [mine] = seat("editor").get("/").context["mine"]
    assert mine == change_set and mine.conflict_count == 1
    assert "1 component in conflict" in seat("editor").get("/").content.decode()


def test_the_home_page_loads_the_failed_applies_panel(seat, change_set, users):
    home = seat("approver").get("/").content.decode()
    assert 'hx-get="/applies/failed/"' in home
    failed = ApplyRun.objects.create(
        workspace=change_set.workspace, change_set=change_set, status=RunStatus.FAILED, error="AWS said no"
    )
    panel = seat("approver").get("/applies/failed/").content.decode()
    assert f"apply #{failed.pk} failed" in panel and "AWS said no" in panel
    assert "No failed applies." in seat("outsider").get("/applies/failed/").content.decode()
    ApplyRun.objects.create(workspace=change_set.workspace, change_set=change_set, status=RunStatus.SUCCEEDED)
    assert "No failed applies." in seat("approver").get("/applies/failed/").content.decode()
