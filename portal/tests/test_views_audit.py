"""Audit log pages, per workspace and per change set: filters, pages of 50, masking."""

import pytest

from portal import audit, changesets
from portal.models import AuditEvent

from .factories import SECRET
from .test_views_changesets import BASE, url


@pytest.mark.parametrize("who", ["approver", "editor"])
def test_it_shows_the_workspace_audit_log_to_members(seat, change_set, who):
    page = seat(who).get(f"{BASE}/audit/")
    assert page.status_code == 200
    verbs = {e.verb for e in page.context["events"]}
    assert {"changeset.created", "component.added", "component.edited", "changeset.merged"} <= verbs


def test_it_hides_audit_logs_from_outsiders(seat, change_set):
    client = seat("outsider")
    assert client.get(f"{BASE}/audit/").status_code == 404
    assert client.get(url(change_set, "audit/")).status_code == 404


def test_it_filters_by_verb_actor_and_target(seat, change_set, users):
    client = seat("editor")

    def only(query):
        events = client.get(f"{BASE}/audit/{query}").context["events"]
        return {(e.verb, e.actor.username, e.target) for e in events}

    assert {v for v, _, _ in only("?verb=component.added")} == {"component.added"}
    assert {a for _, a, _ in only("?actor=bob")} == {"bob"}
    assert only("?actor=alice") == set()
    assert {t for _, _, t in only("?target=web")} == {"web-sg"}


def test_it_shows_a_change_sets_own_history(seat, change_set, shop, users):
    changesets.create_change_set(shop, users["editor"], "unrelated")
    page = seat("editor").get(url(change_set, "audit/"))
    assert {e.change_set_id for e in page.context["events"]} == {change_set.pk}
    assert f"History of #{change_set.pk} open-port-3000" in page.content.decode()


def test_it_pages_by_fifty(seat, shop, users):
    for i in range(120):
        audit.record("test.event", actor=users["editor"], workspace=shop, target=f"t{i}")
    client = seat("editor")
    first = client.get(f"{BASE}/audit/?verb=test.event")
    assert len(first.context["events"]) == 50 and first.context["events"].paginator.num_pages == 3
    third = client.get(f"{BASE}/audit/?verb=test.event&page=3")
    assert [e.target for e in third.context["events"]][-1] == "t0"
    assert "verb=test.event&amp;page=2" in third.content.decode()


def test_it_masks_secrets_in_audit_data(seat, change_set):
    text = seat("approver").get(f"{BASE}/audit/").content.decode()
    assert SECRET not in text


def test_it_masks_a_secret_recorded_at_its_path(seat, shop, users):
    audit.record(
        "conflict.resolved",
        actor=users["editor"],
        workspace=shop,
        target="db",
        before={
            "conflict": {"path": "/MasterUserPassword", "head": SECRET, "mine": SECRET + "2", "base": None}
        },
    )
    page = seat("editor").get(f"{BASE}/audit/?verb=conflict.resolved")
    assert SECRET not in page.content.decode()
    assert AuditEvent.objects.filter(verb="conflict.resolved").count() == 1


def test_an_unknown_verb_or_actor_is_named_and_the_other_filters_still_apply(seat, change_set):
    client = seat("editor")
    page = client.get(f"{BASE}/audit/?verb=no.such.verb&actor=nobody&target=web")
    assert page.status_code == 200
    assert {e.target for e in page.context["events"]} == {"web-sg"}
    text = page.content.decode()
    assert "verb: Select a valid choice." in text and "actor: Select a valid choice." in text


def test_the_pager_keeps_the_filters(seat, shop, users):
    for i in range(60):
        audit.record("test.event", actor=users["editor"], workspace=shop, target=f"t{i}")
    page = seat("editor").get(f"{BASE}/audit/?verb=test.event&actor=bob")
    text = page.content.decode()
    assert page.context["events"].paginator.count == 60 and "· 60 events" in text
    assert "verb=test.event&amp;actor=bob&amp;page=2" in text and "Older →" in text
