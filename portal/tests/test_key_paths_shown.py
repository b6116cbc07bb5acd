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


def test_a_renamed_variable_reads_as_one_gone_and_one_new(client, task, users):
    bob = users["editor"]
    cs = changesets.create_change_set(task, bob, "rename")
    changesets.set_property(cs, bob, "web-task", "/ContainerDefinitions/0/Environment/0/Name", "APP_ENV")
    diff = page(client, users, cs)
    assert "<code>/ContainerDefinitions/web/Environment/NODE_ENV</code>" in diff
    assert "<code>/ContainerDefinitions/web/Environment/APP_ENV</code>" in diff


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


# --- Lists compared by key ------------------------------------------------------------------------


def test_one_variable_removed_is_one_deletion_by_key(client, task, users):
    bob = users["editor"]
    cs = changesets.create_change_set(task, bob, "drop-node-env")
    changesets.upsert_component(
        cs,
        bob,
        "web-task",
        TD,
        {
            "Family": "web",
            "ContainerDefinitions": [{"Name": "web", "Image": "web:1", "Environment": ENVIRONMENT[1:]}],
        },
    )
    html = page(client, users, cs)
    diff = html[html.index('id="diff"') : html.index('id="plan"')]
    assert diff.count('<td class="path-col">') == 1
    assert "<code>/ContainerDefinitions/web/Environment/NODE_ENV</code>" in diff
    assert SECRET not in html


def test_by_key_pairs_items_and_falls_back_to_indexes():
    from portal import jsondiff

    old = {"L": [{"Name": "A", "Value": "1"}, {"Name": "B", "Value": "2"}, {"Name": "C", "Value": "3"}]}
    new = {"L": [{"Name": "A", "Value": "1"}, {"Name": "C", "Value": "4"}, {"Name": "D", "Value": "5"}]}
    assert [(c.path, c.op) for c in jsondiff.changes(old, new, by_key=True)] == [
        ("/L/B", "deleted"),
        ("/L/C/Value", "modified"),
        ("/L/D", "added"),
    ]
    # The engine's own diff stays by index (it is applied by index).
    assert [c.path for c in jsondiff.changes(old, new)][0] == "/L/1/Name"
    # Reordered, or with an item without a key: by index.
    swapped = {"L": [old["L"][1], old["L"][0], old["L"][2]]}
    assert [c.path for c in jsondiff.changes(old, swapped, by_key=True)][0] == "/L/0/Name"
    keyless = {"L": [{"Value": "1"}]}
    assert jsondiff.changes(keyless, {"L": [{"Value": "2"}]}, by_key=True)[0].path == "/L/0/Value"


def test_a_secret_derived_by_position_stays_masked_when_its_item_moves():
    from portal.secrets import MASK, masked_changes

    before = {"L": [{"Name": "A", "Value": "plain"}, {"Name": "UP", "Value": "derived-one"}]}
    after = {"L": [{"Name": "UP", "Value": "derived-two"}]}
    rows = masked_changes(before, after, ["/L/0/Value"])  # the change set's view: UP is at 0
    shown = {r["path"]: (r["old"], r["new"]) for r in rows}
    assert list(shown) == ["/L/A", "/L/UP/Value"]
    assert shown["/L/UP/Value"] == (MASK, MASK)  # at index 1 before, and still masked


def test_a_component_page_names_pending_values_and_subscribers_by_key(client, workspace, users):
    from portal.tests.factories import src

    env = [
        {"Name": "NODE_ENV", "Value": "production"},
        {"Name": "API_URL", "Value": src("lb", "/resource_value/DNSName")},
    ]
    head(
        workspace,
        users["editor"],
        {
            "lb": ("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Subnets": ["subnet-a", "subnet-b"]}),
            "web-task": (
                TD,
                {
                    "Family": "web",
                    "ContainerDefinitions": [{"Name": "web", "Image": "web:1", "Environment": env}],
                },
            ),
        },
    )
    client.force_login(users["editor"])
    task_page = client.get(f"/workspaces/{workspace.slug}/components/web-task/").content.decode()
    assert (
        "Waiting for values at <code>/ContainerDefinitions/web/Environment/API_URL/Value</code>" in task_page
    )
    lb_page = client.get(f"/workspaces/{workspace.slug}/components/lb/").content.decode()
    assert "<code>/ContainerDefinitions/web/Environment/API_URL/Value</code>" in lb_page  # its subscriber
