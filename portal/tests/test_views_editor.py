"""The component editor inside a change set: choosing a type, fields from the schema,
JSON, subscriptions, errors next to the field; delete and revert."""

import json

import pytest

from portal import changesets
from portal.models import AuditEvent, ChangeSet, ChangeSetStatus
from portal.tests.factories import src

from .test_views_changesets import BASE, url


@pytest.fixture
def empty_cs(shop, users):
    return changesets.create_change_set(shop, users["editor"], "editing")


def new_sg_data(**extra):
    data = {
        "schema": "AWS::EC2::SecurityGroup",
        "mode": "fields",
        "name": "web-sg",
        "p__GroupDescription": "web tier",
        "p__SecurityGroupIngress": json.dumps(
            [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}]
        ),
        "new_target": "/VpcId",
        "new_component": "vpc",
        "new_path": "/resource_value/VpcId",
    }
    data.update(extra)
    return data


# --- Choosing a type ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_offers_a_type_search_to_editors_and_up(seat, empty_cs, who):
    page = seat(who).get(url(empty_cs, "components/new/"))
    assert page.status_code == 200 and b'hx-get="/workspaces/tonys-chips/types/"' in page.content


def test_it_hides_the_editor_from_outsiders(seat, empty_cs):
    client = seat("outsider")
    assert client.get(url(empty_cs, "components/new/")).status_code == 404
    assert client.get(url(empty_cs, "components/api-sg/edit/")).status_code == 404
    assert client.get(f"{BASE}/types/?q=vpc").status_code == 404
    assert client.post(url(empty_cs, "components/new/"), new_sg_data()).status_code == 404


def test_it_searches_the_schema_registry(seat, shop):
    page = seat("editor").get(f"{BASE}/types/?q=security group", HTTP_HX_REQUEST="true")
    assert page.status_code == 200
    assert b'value="AWS::EC2::SecurityGroup"' in page.content
    assert b"<html" not in page.content


def test_it_asks_again_for_an_unknown_type(seat, empty_cs):
    page = seat("editor").get(url(empty_cs, "components/new/") + "?type=AWS::Nope::Nothing")
    assert b"There is no type AWS::Nope::Nothing" in page.content
    searching = seat("editor").get(url(empty_cs, "components/new/") + "?q=security")
    assert b"There is no type" not in searching.content and b"AWS::EC2::SecurityGroup" in searching.content


def test_it_goes_from_the_picker_to_a_components_editor(seat, empty_cs):
    client = seat("editor")
    response = client.get(url(empty_cs, "components/edit/") + "?name=api-sg")
    assert response["Location"] == url(empty_cs, "components/api-sg/edit/")
    missing = client.get(url(empty_cs, "components/edit/") + "?name=nope", follow=True)
    assert "There is no component &#x27;nope&#x27;" in missing.content.decode()
    assert seat("outsider").get(url(empty_cs, "components/edit/") + "?name=api-sg").status_code == 404


# --- Fields from the schema --------------------------------------------------------------------


def test_it_generates_fields_from_the_schema(seat, empty_cs):
    page = seat("editor").get(url(empty_cs, "components/new/") + "?type=AWS::EC2::SecurityGroup&name=web-sg")
    form = page.context["form"]
    kinds = {f.field.property: f.field.kind for f in form.property_fields()}
    assert kinds["GroupDescription"] == "string" and kinds["SecurityGroupIngress"] == "json"
    assert "GroupId" not in kinds  # read-only: AWS sets it
    assert [f.field.property for f in form.set_fields()] == ["GroupDescription"]  # required
    assert form["name"].value() == "web-sg"


def test_it_offers_enums_booleans_and_integers_as_such(seat, empty_cs):
    page = seat("editor").get(url(empty_cs, "components/new/") + "?type=AWS::ECS::Service")
    kinds = {f.field.property: f.field.kind for f in page.context["form"].property_fields()}
    assert kinds["LaunchType"] == "enum" and kinds["DesiredCount"] == "integer"
    assert kinds["EnableECSManagedTags"] == "boolean"


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_adds_a_component_with_fields_json_and_a_subscription(seat, empty_cs, users, who):
    response = seat(who).post(url(empty_cs, "components/new/"), new_sg_data())
    assert response.status_code == 302 and response["Location"] == url(empty_cs) + "#c-web-sg"
    entry = empty_cs.entries.get(name="web-sg")
    assert entry.properties == {
        "GroupDescription": "web tier",
        "SecurityGroupIngress": [
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
        ],
        "VpcId": src("vpc", "/resource_value/VpcId"),
    }
    assert AuditEvent.objects.filter(verb="component.added", target="web-sg", actor=users[who]).count() == 1


def test_it_saves_nothing_and_shows_errors_next_to_the_field(seat, empty_cs):
    bad = json.dumps([{"IpProtocol": "tcp", "FromPort": "many", "ToPort": 443, "CidrIp": "0.0.0.0/0"}])
    page = seat("editor").post(url(empty_cs, "components/new/"), new_sg_data(p__SecurityGroupIngress=bad))
    assert page.status_code == 400
    assert not empty_cs.entries.exists()
    errors = page.context["form"].errors
    assert "p__SecurityGroupIngress" in errors and "/0/FromPort" in errors["p__SecurityGroupIngress"][0]
    text = page.content.decode()
    assert "Nothing was saved." in text
    assert "web tier" in text and "many" in text  # the input comes back


def test_it_rejects_json_that_does_not_parse_without_calling_the_engine(seat, empty_cs):
    page = seat("editor").post(url(empty_cs, "components/new/"), new_sg_data(p__SecurityGroupIngress="[{"))
    assert page.status_code == 400
    assert "not valid JSON" in page.context["form"].errors["p__SecurityGroupIngress"][0]
    assert not empty_cs.entries.exists()


def test_it_shows_a_subscription_error_on_the_new_subscription(seat, empty_cs):
    page = seat("editor").post(url(empty_cs, "components/new/"), new_sg_data(new_component="no-such-thing"))
    assert page.status_code == 400
    assert "no component named 'no-such-thing'" in page.context["form"].new_subscriptions[0].errors[0]
    assert "no component named &#x27;no-such-thing&#x27;" in page.content.decode()
    assert not empty_cs.entries.exists()


def test_it_refuses_a_new_component_with_a_taken_name(seat, empty_cs):
    page = seat("editor").post(url(empty_cs, "components/new/"), new_sg_data(name="api-sg"))
    assert page.status_code == 400
    assert "already exists" in page.context["form"].errors["name"][0]
    assert not empty_cs.entries.exists()


def test_it_edits_a_head_component_and_keeps_its_subscription(seat, empty_cs):
    client = seat("editor")
    page = client.get(url(empty_cs, "components/api-sg/edit/"))
    form = page.context["form"]
    assert [(s.target, s.component, s.path) for s in form.subscriptions] == [
        ("/VpcId", "vpc", "/resource_value/VpcId")
    ]
    assert "VpcId" not in form.property_names  # shown as its subscription, not as a text box
    data = {
        "mode": "fields",
        "p__GroupDescription": "api tier",
        "sub_target": "/VpcId",
        "sub_component": "vpc",
        "sub_path": "/resource_value/VpcId",
    }
    assert client.post(url(empty_cs, "components/api-sg/edit/"), data).status_code == 302
    entry = empty_cs.entries.get(name="api-sg")
    assert entry.properties == {"GroupDescription": "api tier", "VpcId": src("vpc", "/resource_value/VpcId")}


def test_it_removes_a_subscription(seat, empty_cs):
    data = {
        "mode": "fields",
        "p__GroupDescription": "api",
        "sub_target": "/VpcId",
        "sub_component": "vpc",
        "sub_path": "/resource_value/VpcId",
        "sub_remove": "0",
    }
    seat("editor").post(url(empty_cs, "components/api-sg/edit/"), data)
    assert empty_cs.entries.get(name="api-sg").properties == {"GroupDescription": "api"}


def test_it_edits_the_whole_document_as_json(seat, empty_cs):
    doc = {
        "GroupDescription": "api",
        "VpcId": src("vpc", "/resource_value/VpcId"),
        "Tags": [{"Key": "team", "Value": "chips"}],
    }
    response = seat("editor").post(
        url(empty_cs, "components/api-sg/edit/"), {"mode": "json", "document": json.dumps(doc)}
    )
    assert response.status_code == 302
    assert empty_cs.entries.get(name="api-sg").properties == doc


def test_it_marks_a_component_for_replacement(seat, empty_cs):
    data = {"mode": "json", "document": json.dumps({"CidrBlock": "10.0.0.0/16"}), "replace": "on"}
    seat("editor").post(url(empty_cs, "components/vpc/edit/"), data)
    assert empty_cs.entries.get(name="vpc").replace is True


def test_it_404s_an_unknown_component(seat, empty_cs):
    assert seat("editor").get(url(empty_cs, "components/nope/edit/")).status_code == 404


def test_it_says_why_an_applied_change_set_cannot_be_edited(seat, empty_cs):
    ChangeSet.objects.filter(pk=empty_cs.pk).update(status=ChangeSetStatus.APPLIED)
    page = seat("editor").post(url(empty_cs, "components/new/"), new_sg_data())
    assert page.status_code == 409
    assert "can no longer be edited" in page.content.decode()


# --- Subscription paths ------------------------------------------------------------------------


def test_it_lists_the_paths_a_subscription_can_read(seat, empty_cs):
    page = seat("editor").get(url(empty_cs, "source-paths/") + "?new_component=vpc", HTTP_HX_REQUEST="true")
    paths = dict(page.context["paths"])
    assert paths["/resource_value/VpcId"] == "vpc-123"  # a read-only attribute, with its value
    assert paths["/resource_value/CidrBlock"] == "10.0.0.0/16" and "/domain/CidrBlock" in paths
    assert paths["/resource_value/Tags"] == "not known yet"  # in the schema, not observed
    assert paths["/si/name"] == "vpc"
    assert b'<option value="/resource_value/VpcId">vpc-123</option>' in page.content


def test_it_lists_stack_outputs_by_key(seat, shop, users):
    from portal.tests.factories import head, observe

    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    comps = head(shop, users["editor"], {"stack": ("AWS::CloudFormation::Stack", {"TemplateBody": template})})
    observe(
        comps["stack"],
        "arn:stack",
        {"Outputs": [{"OutputKey": "ServiceDiscoveryArn", "OutputValue": "arn:sd"}]},
    )
    cs = changesets.create_change_set(shop, users["editor"], "x")
    paths = dict(seat("editor").get(url(cs, "source-paths/") + "?new_component=stack").context["paths"])
    assert paths["/resource_value/Outputs/ServiceDiscoveryArn/OutputValue"] == "arn:sd"
    assert "/resource_value/Outputs/0/OutputValue" not in paths  # by key, not by index


def test_it_hides_source_paths_from_outsiders(seat, empty_cs):
    assert seat("outsider").get(url(empty_cs, "source-paths/") + "?new_component=vpc").status_code == 404


# --- Delete and revert -------------------------------------------------------------------------


def test_it_deletes_and_reverts_a_component(seat, empty_cs):
    client = seat("editor")
    client.post(url(empty_cs, "components/db/delete/"))
    assert empty_cs.entries.get(name="db").op == "delete"
    client.post(url(empty_cs, "components/db/revert/"))
    assert not empty_cs.entries.filter(name="db").exists()


def test_it_refuses_to_delete_a_component_others_subscribe_to(seat, empty_cs):
    response = seat("editor").post(url(empty_cs, "components/vpc/delete/"), follow=True)
    assert "still subscribes to vpc" in response.content.decode()
    assert not empty_cs.entries.filter(name="vpc").exists()


def test_it_refuses_delete_and_revert_from_outsiders(seat, empty_cs):
    client = seat("outsider")
    assert client.post(url(empty_cs, "components/db/delete/")).status_code == 404
    assert client.post(url(empty_cs, "components/db/revert/")).status_code == 404
    assert not empty_cs.entries.exists()
