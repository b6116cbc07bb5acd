"""Approvals cover exactly what the approver was shown, and nothing lets them be bypassed:
each test here is a way around them that once worked."""

import pytest

from portal import approvals, changesets, lifecycle
from portal.errors import ConflictError, PermissionDenied, ValidationError
from portal.models import ChangeSetStatus, Membership, Role

from .factories import head, src

SG = "AWS::EC2::SecurityGroup"
SERVICE = "AWS::ServiceDiscovery::Service"


@pytest.fixture
def carol(workspace, django_user_model):
    user = django_user_model.objects.create_user("carol", password="pw-carol-123")
    Membership.objects.create(workspace=workspace, user=user, role=Role.APPROVER)
    return user


@pytest.fixture
def pending(workspace, users):
    cs = changesets.create_change_set(workspace, users["editor"], "open-port")
    changesets.upsert_component(cs, users["editor"], "web-sg", SG, {"GroupDescription": "web"})
    approvals.request_approval(cs, users["editor"])
    cs.refresh_from_db()
    return cs


def _status(cs):
    cs.refresh_from_db()
    return cs.status


def test_it_refuses_an_approval_of_content_the_approver_did_not_see(pending, users):
    seen = approvals.checksum(pending)
    changesets.set_property(pending, users["editor"], "web-sg", "/GroupDescription", "edited after load")
    with pytest.raises(ConflictError, match="components were edited"):
        approvals.approve(pending, users["approver"], "ok", checksum=seen)
    assert not pending.approvals.exists()


def test_it_approves_with_the_checksum_it_was_shown(pending, users):
    approvals.approve(pending, users["approver"], "ok", checksum=approvals.checksum(pending))
    assert _status(pending) == ChangeSetStatus.APPROVED


def test_it_refuses_a_checksum_that_is_not_one(pending, users):
    with pytest.raises(ValidationError, match="not a change-set checksum"):
        approvals.approve(pending, users["approver"], "ok", checksum="x" * 5000)


def test_a_rejection_needs_a_revision_before_approval_is_requested_again(pending, users, carol):
    approvals.approve(pending, users["approver"], "fine by me")
    approvals.reject(pending, carol, "port 3000 must not be public")
    assert _status(pending) == ChangeSetStatus.REJECTED
    with pytest.raises(ConflictError, match="needs a revision"):
        approvals.request_approval(pending, users["editor"])
    assert approvals.approval_blockers(pending)

    changesets.set_property(pending, users["editor"], "web-sg", "/GroupDescription", "web, private")
    assert _status(pending) == ChangeSetStatus.OPEN
    approvals.request_approval(pending, users["editor"])
    pending.refresh_from_db()
    # alice's approval was of the rejected revision: it does not count again.
    assert approvals.valid_approvers(pending) == set()


def test_an_edit_undone_still_voids_earlier_approvals(pending, users):
    approvals.approve(pending, users["approver"], "ok")
    changesets.set_property(pending, users["editor"], "web-sg", "/GroupDescription", "other")
    changesets.set_property(pending, users["editor"], "web-sg", "/GroupDescription", "web")
    pending.refresh_from_db()
    assert approvals.valid_approvers(pending) == set()
    assert _status(pending) == ChangeSetStatus.NEEDS_APPROVAL


def test_a_reject_supersedes_the_same_approvers_earlier_approve(workspace, pending, users):
    workspace.approvals_required = 1
    approvals.approve(pending, users["approver"], "ok")
    approvals.reject(pending, users["approver"], "on second thought, no")
    pending.refresh_from_db()
    assert approvals.valid_approvers(pending) == set()
    rows = approvals.approvals_state(pending)
    assert rows[1]["why_not"] == "superseded by a later decision"


def test_an_approver_who_edited_it_cannot_approve_it(pending, users, carol):
    changesets.upsert_component(pending, carol, "db-sg", SG, {"GroupDescription": "db"})
    with pytest.raises(PermissionDenied, match="You edited this change set"):
        approvals.approve(pending, carol, "lgtm")
    assert not pending.approvals.exists()


def test_an_approval_stops_counting_when_its_approver_loses_the_role(workspace, pending, users):
    approvals.approve(pending, users["approver"], "ok")
    pending.refresh_from_db()
    assert approvals.valid_approvers(pending) == {users["approver"].pk}
    Membership.objects.filter(workspace=workspace, user=users["approver"]).update(role=Role.EDITOR)
    assert approvals.valid_approvers(pending) == set()
    assert "approver role" in approvals.approvals_state(pending)[0]["why_not"]
    Membership.objects.filter(workspace=workspace, user=users["approver"]).delete()
    assert approvals.approval_blockers(pending)


def test_an_approval_goes_stale_when_head_moves_the_values_it_will_send(workspace, users):
    head(workspace, users["editor"], {"ns": (SG, {"GroupDescription": "api-1"})})
    cs = changesets.create_change_set(workspace, users["editor"], "register api")
    changesets.upsert_component(
        cs, users["editor"], "api", SERVICE, {"Name": src("ns", "/domain/GroupDescription")}
    )
    approvals.request_approval(cs, users["editor"])
    cs.refresh_from_db()
    approvals.approve(cs, users["approver"], "creates api-1", checksum=approvals.checksum(cs))
    cs.refresh_from_db()
    assert approvals.valid_approvers(cs) == {users["approver"].pk}

    other = changesets.create_change_set(workspace, users["editor"], "rename")
    changesets.set_property(other, users["editor"], "ns", "/GroupDescription", "api-PROD-DROP")
    changesets.merge(other, users["editor"])

    cs.refresh_from_db()
    assert approvals.valid_approvers(cs) == set()
    assert "plan changed" in approvals.what_changed(cs, cs.approvals.get().checksum, approvals.checksum(cs))


def test_a_directly_merged_change_set_is_closed(workspace, users):
    cs = changesets.create_change_set(workspace, users["editor"], "import")
    changesets.upsert_component(cs, users["editor"], "web-sg", SG, {"GroupDescription": "web"})
    changesets.merge(cs, users["editor"])
    assert _status(cs) == ChangeSetStatus.MERGED
    with pytest.raises(ConflictError, match="can no longer be edited"):
        changesets.set_property(cs, users["editor"], "web-sg", "/GroupDescription", "rewritten")
    assert cs.audit_events.filter(verb="changeset.merged").count() == 1


def test_the_lifecycle_offers_only_the_moves_a_seat_may_make(pending, users):
    assert "approve" in lifecycle.allowed(pending, users["approver"])
    assert "approve" not in lifecycle.allowed(pending, users["editor"])
    assert lifecycle.allowed(pending, users["outsider"]) == set()


def test_every_status_change_is_audited(pending, users):
    approvals.approve(pending, users["approver"], "ok")
    verbs = list(pending.audit_events.order_by("id").values_list("verb", flat=True))
    assert verbs[-2:] == ["changeset.approval_requested", "changeset.approved"]
    event = pending.audit_events.get(verb="changeset.approved")
    assert event.before == {"status": "needs_approval"}
    assert event.after["status"] == "approved"
