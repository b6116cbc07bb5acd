"""Change-set list and detail pages, and the change-set POSTs, from the three seats."""

import pytest
from django.test import Client

from portal import approvals, changesets
from portal.models import AuditEvent, ChangeSet, ChangeSetStatus, Component
from portal.secrets import MASK
from portal.tests.factories import SECRET, head

BASE = "/workspaces/tonys-chips"


def url(cs, suffix=""):
    return f"{BASE}/changesets/{cs.pk}/{suffix}"


# --- The list --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_lists_open_change_sets_to_members(seat, change_set, who):
    page = seat(who).get(f"{BASE}/changesets/")
    assert page.status_code == 200
    assert b"open-port-3000" in page.content


def test_it_hides_the_list_from_outsiders(seat, change_set):
    assert seat("outsider").get(f"{BASE}/changesets/").status_code == 404


def test_it_sends_anonymous_users_to_sign_in(client, change_set):
    response = client.get(url(change_set))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_filters_the_list_by_status(seat, change_set, users):
    changesets.abandon(
        changesets.create_change_set(change_set.workspace, users["editor"], "given-up"), users["editor"]
    )
    client = seat("editor")
    assert b"given-up" not in client.get(f"{BASE}/changesets/").content
    assert b"given-up" in client.get(f"{BASE}/changesets/?status=abandoned").content
    assert b"given-up" in client.get(f"{BASE}/changesets/?status=").content


# --- Creating one ------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_creates_a_change_set_for_editors_and_up(seat, shop, users, who):
    response = seat(who).post(
        f"{BASE}/changesets/new/", {"name": "scale-up", "problem": "slow", "solution": "more"}
    )
    cs = ChangeSet.objects.get(name="scale-up")
    assert response.status_code == 302 and response["Location"] == url(cs)
    assert (cs.author, cs.problem, cs.solution) == (users[who], "slow", "more")


def test_the_new_change_set_form_suggests_a_name_not_one_of_the_seeds(seat, shop):
    page = seat("editor").get(f"{BASE}/changesets/").content.decode()
    assert 'placeholder="e.g. open-port-3000-for-api"' in page


def test_every_page_has_the_favicon(seat, shop):
    page = seat("editor").get(f"{BASE}/changesets/").content.decode()
    assert '<link rel="icon" href="/static/favicon' in page and 'type="image/svg+xml"' in page


def test_it_refuses_to_create_in_a_workspace_of_someone_else(seat, shop):
    assert seat("outsider").post(f"{BASE}/changesets/new/", {"name": "sneaky"}).status_code == 404
    assert not ChangeSet.objects.filter(name="sneaky").exists()


def test_it_asks_for_a_name(seat, shop):
    response = seat("editor").post(f"{BASE}/changesets/new/", {"name": "  "}, follow=True)
    assert b"needs a name" in response.content
    assert not ChangeSet.objects.filter(workspace=shop, name="").exists()


def test_it_only_accepts_posts_for_changes(seat, shop):
    assert seat("editor").get(f"{BASE}/changesets/new/").status_code == 405


def test_it_rejects_a_post_without_csrf_token(shop, users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["editor"])
    assert client.post(f"{BASE}/changesets/new/", {"name": "no-token"}).status_code == 403
    assert not ChangeSet.objects.filter(name="no-token").exists()


# --- The detail page ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_shows_a_change_set_to_members(seat, change_set, who):
    page = seat(who).get(url(change_set))
    assert page.status_code == 200
    text = page.content.decode()
    assert "open-port-3000" in text and "The web tier cannot reach the API." in text
    assert "by <strong>bob</strong>" in text and "based on HEAD v1" in text


def test_it_hides_a_change_set_from_outsiders(seat, change_set):
    client = seat("outsider")
    assert client.get(url(change_set)).status_code == 404
    assert client.get(f"/workspaces/other/changesets/{change_set.pk}/").status_code == 404


def test_it_404s_a_change_set_id_under_another_workspaces_slug(seat, change_set, users):
    from portal.models import Membership, Role, Workspace

    other = Workspace.objects.get(slug="other")
    Membership.objects.create(workspace=other, user=users["editor"], role=Role.EDITOR)
    assert seat("editor").get(f"/workspaces/other/changesets/{change_set.pk}/").status_code == 404


def test_it_shows_the_diff_per_component_and_path_with_subscriptions_as_links(seat, change_set):
    diff = seat("editor").get(url(change_set)).context["diff"]
    by_name = {d["name"]: d for d in diff}
    assert by_name["web-sg"]["op"] == "added" and by_name["api-sg"]["op"] == "modified"
    assert [c["path"] for c in by_name["api-sg"]["changes"]] == ["/SecurityGroupIngress"]
    text = seat("editor").get(url(change_set)).content.decode()
    assert 'href="/workspaces/tonys-chips/components/vpc/?changeset=' in text
    assert 'class="sub"' in text and "/resource_value/VpcId" in text


def test_it_never_shows_a_secret_in_the_diff_or_the_plan(seat, change_set):
    page = seat("approver").get(url(change_set))
    assert SECRET not in page.content.decode()
    db = next(d for d in page.context["diff"] if d["name"] == "db")
    assert db["changes"] == [{"path": "/MasterUserPassword", "op": "modified", "old": MASK, "new": MASK}]
    row = next(a for a in page.context["plan_rows"] if a["component"] == "db")
    assert row["changes"][0]["new"] == MASK


def test_it_masks_env_secrets_changed_by_value_alone(seat, shop, users):
    bob = users["editor"]
    env = [{"Name": "DB_PASSWORD", "Value": "old-" + SECRET}, {"Name": "PORT", "Value": "3000"}]
    task = {"Family": "api", "ContainerDefinitions": [{"Name": "api", "Image": "api:1", "Environment": env}]}
    head(shop, bob, {"api-task": ("AWS::ECS::TaskDefinition", task)})
    cs = changesets.create_change_set(shop, bob, "rotate")
    changesets.set_property(
        cs, bob, "api-task", "/ContainerDefinitions/0/Environment/0/Value", "new-" + SECRET
    )
    changesets.set_property(cs, bob, "api-task", "/ContainerDefinitions/0/Environment/1/Value", "3001")
    page = seat("editor").get(url(cs))
    assert SECRET not in page.content.decode()
    assert "3001" in page.content.decode()


def test_it_shows_the_plan_with_the_replacement_its_property_and_its_cleanup(seat, shop, users):
    bob = users["editor"]
    cs = changesets.create_change_set(shop, bob, "move-vpc")
    changesets.set_property(cs, bob, "vpc", "/CidrBlock", "10.1.0.0/16")
    page = seat("editor").get(url(cs))
    vpc = next(a for a in page.context["plan_rows"] if a["component"] == "vpc")
    assert vpc["kind"] == "replace" and vpc["replace_paths"] == ["/CidrBlock"]
    text = page.content.decode()
    assert "forced by <code>/CidrBlock</code>" in text
    # A VPC has no fixed name: the new one is created first, the old one deleted at the end.
    assert vpc["replacement"] == "create-first"
    assert "The new resource is created first" in text and "<strong>Downtime:</strong>" not in text
    assert page.context["plan_rows"][-1]["kind"] == "cleanup"


def test_it_shows_the_audit_trail_of_the_change_set(seat, change_set):
    text = seat("editor").get(url(change_set)).content.decode()
    for verb in ("changeset.created", "component.edited", "component.added"):
        assert verb in text


def test_it_offers_edit_buttons_to_editors_only(seat, change_set, users):
    from portal.models import Membership, Role

    Membership.objects.filter(user=users["approver"]).update(role=Role.VIEWER)
    assert "Add component" not in seat("approver").get(url(change_set)).content.decode()
    assert "Add component" in seat("editor").get(url(change_set)).content.decode()


def test_it_renders_the_detail_page_in_a_flat_number_of_queries(seat, users, django_assert_max_num_queries):
    """The change set is the same; only the number of HEAD components grows."""
    from portal.models import Membership, Role, Workspace

    counts = []
    for n in (100, 1000):
        ws = Workspace.objects.create(slug=f"big-{n}", name=f"big {n}")
        Membership.objects.create(workspace=ws, user=users["editor"], role=Role.EDITOR)
        _bulk_components(ws, n)
        cs = changesets.create_change_set(ws, users["editor"], "touch three")
        changesets.set_property(cs, users["editor"], "sg-00007", "/GroupDescription", "edited")
        changesets.upsert_component(
            cs, users["editor"], "new-sg", "AWS::EC2::SecurityGroup", {"GroupDescription": "x"}
        )
        changesets.delete_component(cs, users["editor"], "sg-00009")
        client = seat("editor")
        with django_assert_max_num_queries(60) as captured:
            assert client.get(f"/workspaces/big-{n}/changesets/{cs.pk}/").status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts


def _bulk_components(ws, n):
    Component.objects.bulk_create(
        [
            Component(
                workspace=ws,
                name=f"sg-{i:05d}",
                schema="AWS::EC2::SecurityGroup",
                properties={"GroupDescription": f"group {i}"},
                domain={"GroupDescription": f"group {i}"},
                resource_status=["ok", "none", "drifted", "failed"][i % 4],
            )
            for i in range(n)
        ]
    )


# --- Description, abandon, rebase, conflicts ---------------------------------------------------


def test_it_saves_the_description(seat, change_set):
    response = seat("editor").post(
        url(change_set, "describe/"), {"name": "open-port-3000", "problem": "P2", "solution": "S2"}
    )
    assert response.status_code == 302
    change_set.refresh_from_db()
    assert (change_set.problem, change_set.solution) == ("P2", "S2")
    assert AuditEvent.objects.filter(change_set=change_set, verb="changeset.described").count() == 1


def test_it_refuses_a_description_from_outsiders(seat, change_set):
    assert seat("outsider").post(url(change_set, "describe/"), {"name": "x"}).status_code == 404
    change_set.refresh_from_db()
    assert change_set.name == "open-port-3000"


def test_it_says_why_an_applied_change_set_cannot_be_edited(seat, change_set):
    ChangeSet.objects.filter(pk=change_set.pk).update(status=ChangeSetStatus.APPLIED)
    response = seat("editor").post(url(change_set, "describe/"), {"name": "renamed"}, follow=True)
    assert response.status_code == 200
    assert "it can no longer be edited" in response.content.decode()
    htmx = seat("editor").post(url(change_set, "describe/"), {"name": "renamed"}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 409 and b"can no longer be edited" in htmx.content


def test_it_abandons_a_change_set(seat, change_set):
    seat("editor").post(url(change_set, "abandon/"))
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.ABANDONED


def test_it_rebases_and_resolves_conflicts_path_by_path(seat, change_set, users):
    bob = users["editor"]
    other = changesets.create_change_set(change_set.workspace, bob, "head moves")
    changesets.set_property(
        other,
        bob,
        "api-sg",
        "/SecurityGroupIngress",
        [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"}],
    )
    changesets.merge(other, bob)
    client = seat("editor")
    assert "HEAD moved to v2" in client.get(url(change_set)).content.decode()
    client.post(url(change_set, "rebase/"))
    page = client.get(url(change_set))
    assert page.context["conflict_count"] == 1
    assert "Take HEAD" in page.content.decode() and "Keep mine" in page.content.decode()
    client.post(
        url(change_set, "conflicts/resolve/"),
        {"component": "api-sg", "path": "/SecurityGroupIngress", "take": "mine"},
    )
    assert changesets.open_conflicts(change_set) == []
    entry = change_set.entries.get(name="api-sg")
    assert entry.properties["SecurityGroupIngress"][0]["FromPort"] == 3000


def test_it_reports_a_conflict_that_does_not_exist(seat, change_set):
    response = seat("editor").post(
        url(change_set, "conflicts/resolve/"),
        {"component": "api-sg", "path": "/Nope", "take": "head"},
        follow=True,
    )
    assert "No conflict at api-sg/Nope" in response.content.decode()


def test_it_shows_approvals_marked_stale(seat, change_set, users):
    approvals.request_approval(change_set, users["editor"])
    approvals.approve(change_set, users["approver"], "fine")
    changesets.set_property(change_set, users["editor"], "web-sg", "/GroupDescription", "web tier")
    text = seat("editor").get(url(change_set)).content.decode()
    assert "stale: the change set or its plan changed since" in text
