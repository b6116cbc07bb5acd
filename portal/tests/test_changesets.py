import pytest

from portal import changesets
from portal.errors import ConflictError, NotFound, PermissionDenied, ValidationError
from portal.models import AuditEvent, ChangeSetStatus, Component, Membership, Role

from .factories import head, src

SG = "AWS::EC2::SecurityGroup"
SVC = "AWS::ECS::Service"


@pytest.fixture
def bob(users):
    return users["editor"]


@pytest.fixture
def base(workspace, bob):
    return head(
        workspace,
        bob,
        {
            "api-sg": (
                SG,
                {
                    "GroupDescription": "api",
                    "SecurityGroupIngress": [
                        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "10.0.0.0/16"}
                    ],
                },
            ),
            "api": (SVC, {"ServiceName": "api", "DesiredCount": 2, "LaunchType": "FARGATE"}),
        },
    )


def test_it_creates_a_change_set_from_head_and_audits_it(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "add rule", problem="p", solution="s")
    assert cs.base_version == workspace.head_version == 1 or cs.base_version == 1
    assert cs.status == ChangeSetStatus.OPEN
    assert AuditEvent.objects.filter(change_set=cs, verb="changeset.created", actor=bob).exists()


def test_it_refuses_viewers_and_outsiders(workspace, users, base):
    viewer = users["outsider"]
    with pytest.raises(NotFound):
        changesets.create_change_set(workspace, viewer, "nope")
    Membership.objects.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    with pytest.raises(PermissionDenied, match="needs editor"):
        changesets.create_change_set(workspace, viewer, "nope")


def test_it_leaves_everything_as_it_was_after_an_invalid_edit(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "bad")
    changesets.set_property(cs, bob, "api", "/DesiredCount", 3)
    revision = cs.__class__.objects.get(pk=cs.pk).revision
    with pytest.raises(ValidationError) as err:
        changesets.set_property(cs, bob, "api", "/DesiredCount", "three")
    assert err.value.errors[0]["path"] == "/DesiredCount"
    entry = cs.entries.get(name="api")
    assert entry.properties["DesiredCount"] == 3
    assert cs.__class__.objects.get(pk=cs.pk).revision == revision
    assert Component.objects.get(name="api").properties["DesiredCount"] == 2


def test_it_diffs_per_component_and_path_showing_subscriptions(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "self rule")
    rule = {
        "IpProtocol": "tcp",
        "FromPort": 3000,
        "ToPort": 3000,
        "SourceSecurityGroupId": src("api-sg", "/resource_value/GroupId"),
    }
    changesets.set_property(cs, bob, "api-sg", "/SecurityGroupIngress/1", rule)
    changesets.set_property(cs, bob, "api", "/DesiredCount", 4)
    changesets.upsert_component(cs, bob, "logs", "AWS::Logs::LogGroup", {"RetentionInDays": 7})
    diff = {d.name: d for d in changesets.diff(cs)}
    assert diff["api-sg"].op == "modified"
    [change] = diff["api-sg"].changes
    assert change.path == "/SecurityGroupIngress/1" and change.op == "added"
    assert change.new["SourceSecurityGroupId"] == src("api-sg", "/resource_value/GroupId")
    assert [(c.path, c.old, c.new) for c in diff["api"].changes] == [("/DesiredCount", 2, 4)]
    assert diff["logs"].op == "added"


def test_it_deletes_and_abandons(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "drop")
    changesets.delete_component(cs, bob, "api")
    assert [(d.name, d.op) for d in changesets.diff(cs)] == [("api", "deleted")]
    changesets.abandon(cs, bob)
    cs.refresh_from_db()
    assert cs.status == ChangeSetStatus.ABANDONED
    with pytest.raises(ConflictError, match="abandoned"):
        changesets.set_property(cs, bob, "api", "/DesiredCount", 1)


def test_it_refuses_to_delete_a_component_others_subscribe_to(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "consumer")
    changesets.upsert_component(
        cs, bob, "web-sg", SG, {"GroupDescription": src("api-sg", "/domain/GroupDescription")}
    )
    changesets.merge(cs, bob)
    cs2 = changesets.create_change_set(workspace, bob, "drop api-sg")
    with pytest.raises(ValidationError, match="web-sg/GroupDescription still subscribes to api-sg"):
        changesets.delete_component(cs2, bob, "api-sg")
    assert not cs2.entries.exists()


def test_it_rebases_cleanly_when_different_paths_changed(workspace, bob, users, base):
    mine = changesets.create_change_set(workspace, bob, "mine")
    changesets.set_property(mine, bob, "api", "/DesiredCount", 4)
    theirs = changesets.create_change_set(workspace, bob, "theirs")
    changesets.set_property(theirs, bob, "api", "/LaunchType", "EC2")
    changesets.merge(theirs, bob)

    assert changesets.rebase(mine, bob) == []
    mine.refresh_from_db()
    assert mine.base_version == 2
    assert mine.entries.get(name="api").properties == {
        "ServiceName": "api",
        "DesiredCount": 4,
        "LaunchType": "EC2",
    }
    changesets.merge(mine, bob)
    assert Component.objects.get(name="api").properties == {
        "ServiceName": "api",
        "DesiredCount": 4,
        "LaunchType": "EC2",
    }


def test_it_lists_conflicts_path_by_path_and_blocks_merge_until_resolved(workspace, bob, base):
    mine = changesets.create_change_set(workspace, bob, "mine")
    changesets.set_property(mine, bob, "api", "/DesiredCount", 4)
    changesets.set_property(mine, bob, "api", "/LaunchType", "EC2")
    theirs = changesets.create_change_set(workspace, bob, "theirs")
    changesets.set_property(theirs, bob, "api", "/DesiredCount", 3)
    changesets.set_property(
        theirs, bob, "api", "/LaunchType", "EC2"
    )  # same change on both sides: no conflict
    changesets.merge(theirs, bob)

    conflicts = changesets.rebase(mine, bob)
    assert [(c["component"], c["path"], c["base"], c["head"], c["mine"]) for c in conflicts] == [
        ("api", "/DesiredCount", 2, 3, 4)
    ]
    with pytest.raises(ConflictError, match="unresolved conflict.*api/DesiredCount"):
        changesets.merge(mine, bob)
    changesets.resolve_conflict(mine, bob, "api", "/DesiredCount", "head")
    changesets.merge(mine, bob)
    assert Component.objects.get(name="api").properties["DesiredCount"] == 3


def test_it_keeps_mine_when_asked(workspace, bob, base):
    mine = changesets.create_change_set(workspace, bob, "mine")
    changesets.set_property(mine, bob, "api", "/DesiredCount", 4)
    theirs = changesets.create_change_set(workspace, bob, "theirs")
    changesets.set_property(theirs, bob, "api", "/DesiredCount", 3)
    changesets.merge(theirs, bob)
    changesets.rebase(mine, bob)
    changesets.resolve_conflict(mine, bob, "api", "/DesiredCount", "mine")
    changesets.merge(mine, bob)
    assert Component.objects.get(name="api").properties["DesiredCount"] == 4


def test_it_merges_atomically(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "two edits")
    changesets.set_property(cs, bob, "api", "/DesiredCount", 4)
    changesets.upsert_component(cs, bob, "web", SVC, {"ServiceName": "web"})
    # Something took the new name in HEAD behind the change set's back.
    Component.objects.create(workspace=workspace, name="web", schema=SVC, properties={})
    with pytest.raises(ValidationError, match="HEAD already has a component named 'web'"):
        changesets.merge(cs, bob)
    assert Component.objects.get(name="api").properties["DesiredCount"] == 2
    workspace.refresh_from_db()
    assert workspace.head_version == 1
    cs.refresh_from_db()
    assert cs.merged_version is None


def test_it_records_who_changed_what_with_before_and_after(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "audit")
    changesets.set_property(cs, bob, "api", "/DesiredCount", 4)
    event = AuditEvent.objects.filter(change_set=cs, verb="component.edited").get()
    assert event.actor == bob and event.target == "api"
    assert event.before["properties"]["DesiredCount"] == 2 and event.after["properties"]["DesiredCount"] == 4


def test_it_turns_a_specs_pipelines_into_pipeline_components(workspace, bob):
    from portal.spec import parse_spec

    spec = parse_spec(
        {
            "components": [
                {"name": "web-logs", "schema": "AWS::Logs::LogGroup", "properties": {"LogGroupName": "/web"}}
            ],
            "pipelines": [
                {
                    "name": "deploy",
                    "description": "health only",
                    "stages": [
                        {"name": "Health", "kind": "http_check", "parameters": {"Url": "example.com"}}
                    ],
                }
            ],
        }
    )
    cs = changesets.create_change_set(workspace, bob, "with pipeline")
    changesets.apply_spec(cs, bob, spec)
    entry = cs.entries.get(name="deploy")
    assert entry.schema == "Portal::Pipeline"
    assert entry.properties["Stages"] == [
        {"Name": "Health", "Kind": "http_check", "Parameters": {"Url": "example.com"}}
    ]


def test_it_lets_only_editors_rebase(workspace, bob, users, base):
    cs = changesets.create_change_set(workspace, bob, "mine")
    changesets.set_property(cs, bob, "api", "/DesiredCount", 4)
    other = changesets.create_change_set(workspace, bob, "theirs")
    changesets.set_property(other, bob, "api", "/LaunchType", "EC2")
    changesets.merge(other, bob)
    Membership.objects.create(workspace=workspace, user=users["outsider"], role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        changesets.rebase(cs, users["outsider"])
    cs.refresh_from_db()
    assert cs.base_version == 1


def test_it_refuses_to_add_a_component_whose_name_is_taken_when_asked_to_create(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "new")
    with pytest.raises(ValidationError, match="'api' already exists"):
        changesets.upsert_component(cs, bob, "api", SVC, {"ServiceName": "x"}, create_only=True)
    assert not cs.entries.exists()


def test_it_refuses_to_remove_a_property_by_key_or_without_a_leading_slash(workspace, bob, base):
    cs = changesets.create_change_set(workspace, bob, "bad paths")
    changesets.set_property(cs, bob, "api-sg", "/Tags", [{"Key": "Name", "Value": "api"}])
    with pytest.raises(ValidationError, match="by its index"):
        changesets.remove_property(cs, bob, "api-sg", "/Tags/Name")
    with pytest.raises(ValidationError, match="must start with '/'"):
        changesets.remove_property(cs, bob, "api-sg", "Tags")
    assert cs.entries.get(name="api-sg").properties["Tags"] == [{"Key": "Name", "Value": "api"}]


def test_it_keeps_an_unresolved_conflict_through_the_next_rebase(workspace, bob, base):
    mine = changesets.create_change_set(workspace, bob, "mine")
    changesets.set_property(mine, bob, "api", "/DesiredCount", 4)
    for path, value in (("/DesiredCount", 3), ("/LaunchType", "EC2")):
        theirs = changesets.create_change_set(workspace, bob, f"theirs {path}")
        changesets.set_property(theirs, bob, "api", path, value)
        changesets.merge(theirs, bob)
        conflicts = changesets.rebase(mine, bob)
        assert [(c["path"], c["head"], c["mine"]) for c in conflicts] == [("/DesiredCount", 3, 4)]
    with pytest.raises(ConflictError, match="api/DesiredCount"):
        changesets.merge(mine, bob)
    assert Component.objects.get(name="api").properties["DesiredCount"] == 3


def test_it_refuses_a_merge_whose_rebased_result_reads_a_component_another_merge_deleted(
    workspace, bob, base
):
    mine = changesets.create_change_set(workspace, bob, "web reads api-sg")
    changesets.upsert_component(
        mine, bob, "web-sg", SG, {"GroupDescription": src("api-sg", "/domain/GroupDescription")}
    )
    theirs = changesets.create_change_set(workspace, bob, "drop api-sg")
    changesets.delete_component(theirs, bob, "api-sg")
    changesets.merge(theirs, bob)
    with pytest.raises(ValidationError, match="web-sg/GroupDescription: no component named 'api-sg'"):
        changesets.merge(mine, bob)
    assert not Component.objects.filter(name="web-sg").exists()
    mine.refresh_from_db()
    assert mine.merged_version is None


def test_it_refuses_a_merge_that_closes_a_cycle_two_change_sets_made(workspace, bob, base):
    one = changesets.create_change_set(workspace, bob, "api-sg reads api")
    changesets.set_property(one, bob, "api-sg", "/GroupDescription", src("api", "/domain/ServiceName"))
    two = changesets.create_change_set(workspace, bob, "api reads api-sg")
    changesets.set_property(two, bob, "api", "/ServiceName", src("api-sg", "/domain/GroupDescription"))
    changesets.merge(one, bob)
    with pytest.raises(ValidationError, match="subscription cycle"):
        changesets.merge(two, bob)
    assert Component.objects.get(name="api").properties["ServiceName"] == "api"


def test_it_refuses_keep_mine_on_a_name_head_gave_another_type(workspace, bob, base):
    mine = changesets.create_change_set(workspace, bob, "logs as a group")
    changesets.upsert_component(mine, bob, "logs", "AWS::Logs::LogGroup", {"RetentionInDays": 7})
    theirs = changesets.create_change_set(workspace, bob, "logs as an sg")
    changesets.upsert_component(theirs, bob, "logs", SG, {"GroupDescription": "logs"})
    changesets.merge(theirs, bob)
    [conflict] = changesets.rebase(mine, bob)
    assert conflict["kind"] == "name_taken"
    with pytest.raises(ValidationError, match="HEAD's logs is a AWS::EC2::SecurityGroup"):
        changesets.resolve_conflict(mine, bob, "logs", "/", "mine")
    assert changesets.open_conflicts(mine)
    assert Component.objects.get(name="logs").properties == {"GroupDescription": "logs"}


def test_it_keeps_mine_on_a_component_head_deleted_and_added_again(workspace, bob, base):
    mine = changesets.create_change_set(workspace, bob, "scale")
    changesets.set_property(mine, bob, "api", "/DesiredCount", 5)
    drop = changesets.create_change_set(workspace, bob, "drop api")
    changesets.delete_component(drop, bob, "api")
    changesets.merge(drop, bob)
    again = changesets.create_change_set(workspace, bob, "api again")
    changesets.upsert_component(again, bob, "api", SVC, {"ServiceName": "api-2"})
    changesets.merge(again, bob)
    [conflict] = changesets.rebase(mine, bob)
    assert conflict["kind"] == "deleted_in_head"
    changesets.resolve_conflict(mine, bob, "api", "/", "mine")
    changesets.merge(mine, bob)
    api = Component.objects.get(name="api")
    assert api.properties["DesiredCount"] == 5


def test_it_closes_a_change_set_once_merged(workspace, bob, base):
    from portal import workspaces
    from portal.spec import parse_spec

    cs = workspaces.import_spec(
        workspace,
        bob,
        parse_spec({"components": [{"name": "logs", "schema": "AWS::Logs::LogGroup", "properties": {}}]}),
    )
    assert not cs.is_editable
    with pytest.raises(ConflictError, match="merged"):
        changesets.set_property(cs, bob, "logs", "/RetentionInDays", 7)
    assert Component.objects.get(name="logs").properties == {}


def test_it_keeps_both_sides_list_edits_when_one_side_removed_an_item(workspace, bob, base):
    # Found by the stateful test: a rule HEAD appended was dropped without a word when the
    # change set had removed the rule before it (its index pointed past the end by then).
    rule = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "10.0.0.0/16"}
    ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "10.0.0.0/16"}
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/16"}
    theirs = changesets.create_change_set(workspace, bob, "theirs")
    changesets.set_property(theirs, bob, "api-sg", "/SecurityGroupIngress/1", ssh)
    changesets.merge(theirs, bob)
    mine = changesets.create_change_set(workspace, bob, "mine")
    changesets.set_property(mine, bob, "api-sg", "/SecurityGroupIngress/2", https)
    changesets.remove_property(mine, bob, "api-sg", "/SecurityGroupIngress/0")  # drops port 80
    later = changesets.create_change_set(workspace, bob, "later")
    changesets.set_property(
        later, bob, "api-sg", "/SecurityGroupIngress/2", dict(https, FromPort=8443, ToPort=8443)
    )
    changesets.merge(later, bob)

    # HEAD added 8443 after 22; mine removed 80 and added 443 at the same place: a conflict.
    assert [c["path"] for c in changesets.rebase(mine, bob)] == ["/SecurityGroupIngress"]

    only_removed = changesets.create_change_set(workspace, bob, "only removes")
    changesets.remove_property(only_removed, bob, "api-sg", "/SecurityGroupIngress/0")
    appended = changesets.create_change_set(workspace, bob, "appends")
    changesets.set_property(appended, bob, "api-sg", "/SecurityGroupIngress/3", https)
    changesets.merge(appended, bob)
    assert changesets.rebase(only_removed, bob) == []
    assert only_removed.entries.get(name="api-sg").properties["SecurityGroupIngress"] == [
        ssh,
        dict(https, FromPort=8443, ToPort=8443),
        https,
    ]
    assert rule not in only_removed.entries.get(name="api-sg").properties["SecurityGroupIngress"]


def test_it_refuses_an_import_whose_result_is_invalid_naming_problems_in_spec_order(workspace, bob, base):
    from portal import workspaces
    from portal.spec import parse_spec

    spec = parse_spec(
        {
            "components": [
                {
                    "name": "zz-web",
                    "schema": SG,
                    "properties": {"GroupDescription": src("nope", "/domain/X")},
                },
                {"name": "aa-db", "schema": SG, "properties": {"GroupDescription": 7}},
            ]
        }
    )
    with pytest.raises(ValidationError) as refused:
        workspaces.import_spec(workspace, bob, spec)
    assert str(refused.value).startswith(
        "The spec was not applied: zz-web/GroupDescription: no component named"
    )
    paths = [e["path"] for e in refused.value.errors]
    assert paths[0] == "zz-web/GroupDescription" and paths[-1] == "aa-db/GroupDescription"
    assert not Component.objects.filter(name__in=["zz-web", "aa-db"]).exists()
