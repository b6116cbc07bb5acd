import re

from portal import changesets
from portal.tests.factories import head, src

TD = "AWS::ECS::TaskDefinition"
SG = "AWS::EC2::SecurityGroup"


def test_it_shows_new_revisions_and_create_first_replacements_in_the_order_they_run(client, workspace, users):
    bob = users["editor"]
    head(
        workspace,
        bob,
        {
            "api-task": (TD, {"Family": "api", "ContainerDefinitions": [{"Name": "api", "Image": "api:1"}]}),
            "sg": (SG, {"GroupDescription": "old"}),
            "db-sg": (SG, {"GroupName": "db", "GroupDescription": "old"}),
            "rule-user": (SG, {"GroupDescription": src("sg", "/resource_value/GroupId")}),
        },
    )
    cs = changesets.create_change_set(workspace, bob, "revise")
    changesets.set_property(cs, bob, "api-task", "/ContainerDefinitions/0/Image", "api:2")
    changesets.set_property(cs, bob, "sg", "/GroupDescription", "new")
    changesets.set_property(cs, bob, "db-sg", "/GroupDescription", "new")
    client.force_login(bob)
    html = client.get(f"/workspaces/{workspace.slug}/changesets/{cs.pk}/").content.decode()
    plan = html[html.index('id="plan"') :]
    badges = re.findall(r'<span class="badge kind-[a-z-]+">([^<]+)</span>', plan)
    cleanups = [b for b in badges if b.startswith("cleanup")]
    assert {"cleanup: delete replaced", "cleanup: old revisions"} <= set(cleanups)
    assert badges[-len(cleanups) :] == cleanups  # the cleanup steps run last
    assert "new revision" in badges[: -len(cleanups)]
    assert "The new resource is created first" in plan
    assert "The old resource is deleted first" in plan and "leave GroupName unset" in plan
    assert "Downtime:" in plan and plan.count("Downtime:") == 1
