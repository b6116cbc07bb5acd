"""The component list and a component's page: properties with subscriptions as links,
what AWS reports, drift, history; secrets masked."""

import pytest

from portal import changesets
from portal.models import Component
from portal.secrets import MASK
from portal.tests.factories import SECRET, head
from workers.models import Action, ActionStatus, ApplyRun, RunStatus

from .test_views_changesets import BASE, _bulk_components


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_lists_components_to_members(seat, shop, who):
    page = seat(who).get(f"{BASE}/components/")
    assert page.status_code == 200 and [c.name for c in page.context["components"]] == ["api-sg", "db", "vpc"]


def test_it_hides_components_from_outsiders(seat, shop):
    client = seat("outsider")
    assert client.get(f"{BASE}/components/").status_code == 404
    assert client.get(f"{BASE}/components/vpc/").status_code == 404


def test_it_paginates_the_component_list(seat, shop):
    _bulk_components(shop, 150)
    client = seat("editor")
    first = client.get(f"{BASE}/components/")
    assert len(first.context["components"]) == 100 and "Page 1 of 2" in first.content.decode()
    assert len(client.get(f"{BASE}/components/?page=2").context["components"]) == 53


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_shows_properties_with_subscriptions_as_links(seat, shop, who):
    page = seat(who).get(f"{BASE}/components/api-sg/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'href="/workspaces/tonys-chips/components/vpc/"' in text and "/resource_value/VpcId" in text
    assert "vpc-123" in seat(who).get(f"{BASE}/components/vpc/").content.decode()  # observed


def test_it_404s_an_unknown_component(seat, shop):
    assert seat("editor").get(f"{BASE}/components/nope/").status_code == 404


def test_it_never_shows_a_secret(seat, shop, users):
    env = [{"Name": "API_TOKEN", "Value": SECRET}]
    task = {"Family": "api", "ContainerDefinitions": [{"Name": "api", "Image": "api:1", "Environment": env}]}
    head(shop, users["editor"], {"task": ("AWS::ECS::TaskDefinition", task)})
    Component.objects.filter(name="db").update(
        resource_value={"MasterUserPassword": SECRET, "Endpoint": {"Address": "db.local"}},
        drift=[{"path": "/MasterUserPassword", "desired": SECRET, "observed": SECRET + "x"}],
    )
    client = seat("editor")
    for name in ("db", "task"):
        text = client.get(f"{BASE}/components/{name}/").content.decode()
        assert SECRET not in text
    db = client.get(f"{BASE}/components/db/").context["c"]
    assert db["drift"][0]["desired"] == MASK and db["resource_value"]["MasterUserPassword"] == MASK


def test_it_shows_drift(seat, shop):
    Component.objects.filter(name="vpc").update(
        resource_status="drifted",
        drift=[{"path": "/CidrBlock", "desired": "10.0.0.0/16", "observed": "10.9.0.0/16"}],
    )
    text = seat("editor").get(f"{BASE}/components/vpc/").content.decode()
    assert "10.9.0.0/16" in text and "drifted" in text


def test_it_shows_the_history_of_edits_and_actions(seat, change_set):
    vpc = Component.objects.get(name="api-sg")
    run = ApplyRun.objects.create(workspace=vpc.workspace, status=RunStatus.FAILED)
    Action.objects.create(
        run=run,
        key="update:api-sg",
        kind="update",
        component_name="api-sg",
        component_id=vpc.id,
        schema=vpc.schema,
        status=ActionStatus.FAILED,
        error="InvalidGroup.NotFound",
    )
    page = seat("editor").get(f"{BASE}/components/api-sg/")
    assert [e.verb for e in page.context["c"]["events"]][-1] == "component.added"
    assert "component.edited" in [e.verb for e in page.context["c"]["events"]]
    actions = seat("editor").get(f"{BASE}/components/id/{vpc.id}/actions/")
    assert "InvalidGroup.NotFound" in actions.content.decode()


def test_it_shows_a_component_as_a_change_set_has_it(seat, change_set):
    page = seat("editor").get(f"{BASE}/components/web-sg/?changeset={change_set.pk}")
    assert page.status_code == 200 and "added there" in page.content.decode()
    assert seat("editor").get(f"{BASE}/components/web-sg/").status_code == 404  # not in HEAD
    assert seat("outsider").get(f"{BASE}/components/web-sg/?changeset={change_set.pk}").status_code == 404


def test_it_renders_the_component_list_in_a_flat_number_of_queries(
    seat, users, django_assert_max_num_queries
):
    from portal.models import Membership, Role, Workspace

    counts = []
    for n in (100, 1000):
        ws = Workspace.objects.create(slug=f"big-{n}", name=f"big {n}")
        Membership.objects.create(workspace=ws, user=users["editor"], role=Role.EDITOR)
        _bulk_components(ws, n)
        changesets.create_change_set(ws, users["editor"], "open one")
        client = seat("editor")
        with django_assert_max_num_queries(10) as captured:
            assert client.get(f"/workspaces/big-{n}/components/").status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1], counts


def test_the_component_filters_combine_and_a_bad_value_is_named_not_a_500(seat, shop):
    client = seat("editor")

    def names(query):
        page = client.get(f"{BASE}/components/{query}")
        assert page.status_code == 200
        return [c.name for c in page.context["components"]], page.content.decode()

    assert names("?name=%20D%20&type=AWS::RDS::DBInstance")[0] == ["db"]
    assert names("?name=sg&status=ok")[0] == []
    found, text = names("?name=sg&type=AWS::Nope::Nothing&status=sideways")
    assert found == ["api-sg"]  # the name still filters; the bad type and status are ignored
    assert "type: Select a valid choice." in text and "status: Select a valid choice." in text
    assert '<option value="AWS::EC2::VPC" selected>' in names("?type=AWS::EC2::VPC")[1]  # the form keeps it


# --- Edit in a change set ------------------------------------------------------------------------


def edit_in(client, name="api-sg", **data):
    return client.post(f"{BASE}/components/{name}/edit-in/", data)


def test_it_offers_editors_the_open_change_sets_to_edit_a_component_in(seat, shop, users):
    bob = users["editor"]
    mine = changesets.create_change_set(shop, bob, "open-port")
    deleting = changesets.create_change_set(shop, bob, "drop-api-sg")
    changesets.delete_component(deleting, bob, "api-sg")
    done = changesets.create_change_set(shop, bob, "done")
    changesets.merge(done, bob)
    page = seat("editor").get(f"{BASE}/components/api-sg/")
    assert [c.pk for c in page.context["edit_in"]] == [mine.pk]
    html = page.content.decode()
    assert f'<option value="{mine.pk}">#{mine.pk} open-port (open)</option>' in html
    assert '<option value="new">a new change set…</option>' in html


def test_viewers_and_outsiders_get_no_such_action(seat, shop, users):
    from portal.models import Membership, Role

    Membership.objects.filter(workspace=shop, user=users["editor"]).update(role=Role.VIEWER)
    viewer = seat("editor")
    assert "Edit in a change set" not in viewer.get(f"{BASE}/components/api-sg/").content.decode()
    before = changesets.ChangeSet.objects.count()
    assert edit_in(viewer, change_set="new").status_code == 403  # a member, without the role
    assert edit_in(seat("outsider"), change_set="new").status_code == 404
    assert changesets.ChangeSet.objects.count() == before


def test_it_starts_a_change_set_for_the_component(seat, shop, users):
    from portal.models import AuditEvent, ChangeSet

    response = edit_in(seat("editor"), change_set="new", new_name="")
    cs = ChangeSet.objects.latest("id")
    assert cs.name == "edit-api-sg" and cs.author == users["editor"]
    assert response["Location"] == f"{BASE}/changesets/{cs.pk}/components/api-sg/edit/"
    assert AuditEvent.objects.filter(verb="changeset.created", change_set=cs).exists()
    edit_in(seat("editor"), change_set="new", new_name="tighten-api-sg")
    assert ChangeSet.objects.filter(name="tighten-api-sg").exists()


def test_it_opens_the_component_in_the_change_set_picked(seat, shop, users):
    cs = changesets.create_change_set(shop, users["editor"], "open-port")
    response = edit_in(seat("approver"), change_set=str(cs.pk))
    assert response["Location"] == f"{BASE}/changesets/{cs.pk}/components/api-sg/edit/"


def test_it_refuses_a_closed_a_deleting_a_foreign_or_no_change_set(seat, shop, workspace, users):
    from portal.models import ChangeSet, Workspace

    bob = users["editor"]
    client = seat("editor")
    done = changesets.create_change_set(shop, bob, "done")
    changesets.merge(done, bob)
    follow = client.post(f"{BASE}/components/api-sg/edit-in/", {"change_set": str(done.pk)}, follow=True)
    assert "it can no longer be edited" in follow.content.decode()
    deleting = changesets.create_change_set(shop, bob, "drop")
    changesets.delete_component(deleting, bob, "api-sg")
    follow = client.post(f"{BASE}/components/api-sg/edit-in/", {"change_set": str(deleting.pk)}, follow=True)
    assert f"Change set #{deleting.pk} deletes api-sg" in follow.content.decode()
    other = Workspace.objects.get(slug="other")
    foreign = ChangeSet.objects.create(workspace=other, name="x", author=users["outsider"], base_version=0)
    assert edit_in(client, change_set=str(foreign.pk)).status_code == 404
    follow = client.post(f"{BASE}/components/api-sg/edit-in/", {"change_set": "nope"}, follow=True)
    assert "Pick a change set, or start a new one." in follow.content.decode()
    assert edit_in(client, name="no-such", change_set="new").status_code == 404
    assert client.get(f"{BASE}/components/api-sg/edit-in/").status_code == 405
