"""Paths are shown by key where a list item has one: the diff, the plan and the conflicts
of a change set read /ContainerDefinitions/web/Environment/API_URL/Value, not
/ContainerDefinitions/0/Environment/2/Value; secrets stay masked."""

import pytest

from portal import changesets
from portal.tests.factories import SECRET, head

TD = "AWS::ECS::TaskDefinition"
ENVIRONMENT = [
    {"Name": "NODE_ENV", "Value": "production"},
    {"Name": "DB_PASSWORD", "Value": "old-" + SECRET},
    {"Name": "API_URL", "Value": "http://internal-alb:3000"},
]


@pytest.fixture
def task(workspace, users):
    head(
        workspace,
        users["editor"],
        {
            "web-task": (
                TD,
                {
                    "Family": "web",
                    "ContainerDefinitions": [{"Name": "web", "Image": "web:1", "Environment": ENVIRONMENT}],
                },
            )
        },
    )
    return workspace


def page(client, users, cs):
    client.force_login(users["editor"])
    return client.get(f"/workspaces/{cs.workspace.slug}/changesets/{cs.pk}/").content.decode()


def test_it_shows_the_diff_and_the_plan_by_key(client, task, users):
    bob = users["editor"]
    cs = changesets.create_change_set(task, bob, "service-discovery")
    changesets.set_property(
        cs,
        bob,
        "web-task",
        "/ContainerDefinitions/0/Environment/2/Value",
        "http://api.tonys-chips.local:3000",
    )
    changesets.set_property(
        cs, bob, "web-task", "/ContainerDefinitions/0/Environment/1/Value", "new-" + SECRET
    )
    html = page(client, users, cs)
    diff, plan = html[html.index('id="diff"') : html.index('id="plan"')], html[html.index('id="plan"') :]
    for part in (diff, plan):
        assert "/ContainerDefinitions/web/Environment/API_URL/Value" in part
        assert "/ContainerDefinitions/web/Environment/DB_PASSWORD/Value" in part
        assert "/ContainerDefinitions/0/Environment" not in part
        assert SECRET not in part


def test_it_keeps_the_index_where_the_items_at_it_differ(client, task, users):
    bob = users["editor"]
    cs = changesets.create_change_set(task, bob, "rename")
    changesets.set_property(cs, bob, "web-task", "/ContainerDefinitions/0/Environment/0/Name", "APP_ENV")
    diff = page(client, users, cs)
    assert "/ContainerDefinitions/web/Environment/0/Name" in diff  # NODE_ENV before, APP_ENV after


def test_it_shows_an_added_item_by_its_key(client, task, users):
    bob = users["editor"]
    cs = changesets.create_change_set(task, bob, "more-env")
    changesets.set_property(
        cs,
        bob,
        "web-task",
        "/ContainerDefinitions/0/Environment/3",
        {"Name": "WEB_URL", "Value": "http://web"},
    )
    assert "/ContainerDefinitions/web/Environment/WEB_URL" in page(client, users, cs)


def test_it_shows_a_conflict_by_key(client, task, users):
    bob = users["editor"]
    cs = changesets.create_change_set(task, bob, "mine")
    changesets.set_property(cs, bob, "web-task", "/ContainerDefinitions/0/Environment/2/Value", "http://mine")
    other = changesets.create_change_set(task, bob, "theirs")
    changesets.set_property(
        other, bob, "web-task", "/ContainerDefinitions/0/Environment/2/Value", "http://theirs"
    )
    changesets.merge(other, bob)
    changesets.rebase(cs, bob)
    html = page(client, users, cs)
    conflicts = html[html.index('id="conflicts"') : html.index('id="diff"')]
    assert "<code>/ContainerDefinitions/web/Environment/API_URL/Value</code>" in conflicts
    # The resolution still names the place by its index, as the engine stores it.
    assert 'name="path" value="/ContainerDefinitions/0/Environment/2/Value"' in conflicts


def test_a_component_page_lists_its_subscriptions_by_key(client, task, users):
    bob = users["editor"]
    cs = changesets.create_change_set(task, bob, "subscribe")
    changesets.set_property(
        cs,
        bob,
        "web-task",
        "/ContainerDefinitions/0/Environment/2/Value",
        {"$source": {"component": "web-task", "path": "/si/name"}},
    )
    client.force_login(bob)
    html = client.get(f"/workspaces/{task.slug}/components/web-task/?changeset={cs.pk}").content.decode()
    assert "<code>/ContainerDefinitions/web/Environment/API_URL/Value</code>" in html
