"""Request approval, approve, reject: who may, what the page offers, and the engine's
refusals shown as messages (4xx for htmx), never a 500."""

import pytest

from portal import approvals, changesets
from portal.models import Approval, ChangeSetStatus, Component

from .factories import observe
from .test_views_changesets import url

STALE = "stale: the change set or its plan changed since"


@pytest.fixture
def pending(change_set, users):
    approvals.request_approval(change_set, users["editor"])
    return change_set


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_requests_approval_for_editors_and_up(seat, change_set, who):
    assert seat(who).post(url(change_set, "request-approval/")).status_code == 302
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.NEEDS_APPROVAL


def test_it_refuses_a_request_from_outsiders(seat, change_set):
    assert seat("outsider").post(url(change_set, "request-approval/")).status_code == 404
    change_set.refresh_from_db()
    assert change_set.status == ChangeSetStatus.OPEN


def test_it_offers_the_request_button_to_the_author(seat, change_set):
    assert "Request approval" in seat("editor").get(url(change_set)).content.decode()


def test_it_approves_for_an_approver(seat, pending):
    response = seat("approver").post(url(pending, "approve/"), {"comment": "ship it"}, follow=True)
    assert "Approved." in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == ChangeSetStatus.APPROVED
    assert Approval.objects.get(change_set=pending).comment == "ship it"


def test_it_forbids_an_editor_to_approve(seat, pending):
    assert seat("editor").post(url(pending, "approve/")).status_code == 403
    assert not Approval.objects.exists()


def test_it_hides_approval_from_outsiders(seat, pending):
    assert seat("outsider").post(url(pending, "approve/")).status_code == 404
    assert seat("outsider").post(url(pending, "reject/"), {"comment": "no"}).status_code == 404
    assert not Approval.objects.exists()


def test_it_offers_approve_and_reject_to_another_approver_only(seat, pending):
    assert (
        f'action="/workspaces/tonys-chips/changesets/{pending.pk}/approve/"'
        in seat("approver").get(url(pending)).content.decode()
    )
    assert "/approve/" not in seat("editor").get(url(pending)).content.decode()


def test_it_never_offers_self_approval_and_shows_the_engines_refusal(seat, shop, users):
    alice = users["approver"]
    own = changesets.create_change_set(shop, alice, "alice's own")
    changesets.upsert_component(own, alice, "extra-sg", "AWS::EC2::SecurityGroup", {"GroupDescription": "x"})
    approvals.request_approval(own, alice)
    client = seat("approver")
    page = client.get(url(own)).content.decode()
    assert "/approve/" not in page and "another approver decides" in page
    forced = client.post(url(own, "approve/"), follow=True)
    assert "You cannot approve or reject your own change set" in forced.content.decode()
    assert not Approval.objects.exists()
    htmx = client.post(url(own, "approve/"), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 403 and htmx["HX-Retarget"] == "#flash"
    assert b"You cannot approve or reject your own change set" in htmx.content


def test_it_rejects_with_a_comment(seat, pending):
    seat("approver").post(url(pending, "reject/"), {"comment": "port 3000 should be internal only"})
    pending.refresh_from_db()
    assert pending.status == ChangeSetStatus.REJECTED
    page = seat("editor").get(url(pending)).content.decode()
    assert "port 3000 should be internal only" in page and "rejected" in page


def test_it_asks_why_when_rejecting(seat, pending):
    response = seat("approver").post(url(pending, "reject/"), {"comment": ""}, follow=True)
    assert "Say why when you reject" in response.content.decode()
    htmx = seat("approver").post(url(pending, "reject/"), {"comment": ""}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 400
    pending.refresh_from_db()
    assert pending.status == ChangeSetStatus.NEEDS_APPROVAL


def test_it_explains_a_decision_on_an_open_change_set(seat, change_set):
    htmx = seat("approver").post(url(change_set, "approve/"), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 409 and b"only a change set awaiting approval can be decided" in htmx.content


def test_it_marks_an_approval_stale_after_an_edit(seat, pending, users):
    seat("approver").post(url(pending, "approve/"), {"comment": "ok"})
    assert STALE not in seat("editor").get(url(pending)).content.decode()
    changesets.set_property(pending, users["editor"], "web-sg", "/GroupDescription", "changed after approval")
    page = seat("editor").get(url(pending))
    assert STALE in page.content.decode()
    assert [a["stale"] for a in page.context["approvals"]] == [True]
    panel = seat("editor").get(url(pending, "apply-panel/"))
    assert any("stale" in b for b in panel.context["apply_blockers"])


def test_it_approves_what_the_page_showed_not_what_changed_since(seat, pending, users):
    page = seat("approver").get(url(pending))
    shown = page.context["checksum"]
    assert f'name="checksum" value="{shown}"' in page.content.decode()
    changesets.set_property(pending, users["editor"], "web-sg", "/GroupDescription", "edited meanwhile")
    response = seat("approver").post(
        url(pending, "approve/"), {"comment": "ok", "checksum": shown}, follow=True
    )
    assert "changed since you reviewed it" in response.content.decode()
    assert not Approval.objects.exists()


def test_the_status_badge_reads_stale_when_the_plan_moved_after_approval(seat, pending):
    seat("approver").post(url(pending, "approve/"), {"comment": "ok"})
    assert 'id="cs-status">approved</span>' in seat("editor").get(url(pending)).content.decode()
    observe(Component.objects.get(workspace=pending.workspace, name="vpc"), "vpc-456", {"VpcId": "vpc-456"})

    body = seat("editor").get(url(pending)).content.decode()
    pending.refresh_from_db()
    assert pending.status == ChangeSetStatus.APPROVED  # the lifecycle has not moved
    assert 'class="badge big needs_approval" id="cs-status">approved — stale</span>' in body
    assert STALE in body


def test_the_page_keeps_the_head_version_a_change_set_was_opened_on(seat, change_set, users):
    bob = users["editor"]
    opened_on = change_set.workspace.head_version
    other = changesets.create_change_set(change_set.workspace, bob, "bump-db")
    changesets.set_property(other, bob, "db", "/DBInstanceClass", "db.t3.small")
    changesets.merge(other, bob)
    changesets.rebase(change_set, bob)
    assert (
        f"based on HEAD v{opened_on}, rebased onto v{opened_on + 1}"
        in seat("editor").get(url(change_set)).content.decode()
    )

    merged_as = changesets.merge(change_set, bob)
    meta = seat("editor").get(url(change_set)).content.decode().split('class="meta"')[1].split("</p>")[0]
    assert f"based on HEAD v{opened_on} · merged as HEAD v{merged_as}" in " ".join(meta.split())
