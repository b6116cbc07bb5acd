"""Each notified event, produced by the real workflow (approvals, applies to moto,
deployment runs, a refresh), makes one delivery per target that wants it; and a target
that is down never holds up an apply."""

import boto3
import pytest

from deployments import runs
from deployments.tests import mini
from notifications import targets
from notifications.events import EVENTS
from notifications.models import Delivery
from portal import approvals, changesets, registry
from portal.models import AuditEvent, ChangeSetStatus, Component
from portal.tests.factories import src
from workers.models import RunStatus
from workers.refresh import refresh_workspace

from .conftest import verified

SECRET = "whsec-everything-0123456789"


@pytest.fixture
def bob(users):
    return users["editor"]


@pytest.fixture
def alice(users):
    return users["approver"]


def propose(workspace, bob, components, name):
    cs = changesets.create_change_set(workspace, bob, name)
    for component, (schema, props) in components.items():
        changesets.upsert_component(cs, bob, component, schema, props)
    return cs


def sent_events():
    return [d.event for d in Delivery.objects.order_by("pk")]


def test_every_listed_event_makes_a_delivery(private_ok, admin, bob, alice, receiver, inline, applier):
    targets.create_target(
        private_ok, admin, "everything", "webhook", receiver.url + "/all", list(EVENTS), SECRET
    )
    logs = {"logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/tonys/api", "RetentionInDays": 7})}

    cs = propose(private_ok, bob, logs, "log-retention")
    inline(approvals.request_approval, cs, bob)
    inline(approvals.reject, cs, alice, "Keep them 7 days, and say why.")
    changesets.set_property(cs, bob, "logs", "/RetentionInDays", 14)  # revised: open again
    inline(approvals.request_approval, cs, bob)
    inline(approvals.approve, cs, alice, "ok")
    assert applier(cs, alice).status == RunStatus.SUCCEEDED
    assert sent_events() == ["approval_requested", "rejected", "approval_requested", "approved", "applied"]

    bad = propose(
        private_ok,
        bob,
        {
            "vpc": ("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"}),
            "subnet": (
                "AWS::EC2::Subnet",
                {"VpcId": src("vpc", "/resource_value/VpcId"), "CidrBlock": "192.168.0.0/24"},
            ),
        },
        "subnet-outside-the-vpc",
    )
    inline(approvals.request_approval, bad, bob)
    inline(approvals.approve, bad, alice)
    assert applier(bad, alice).status == RunStatus.FAILED
    assert sent_events()[-3:] == ["approval_requested", "approved", "apply_failed"]

    check = {"Name": "Health", "Kind": "http_check", "Parameters": {"Url": receiver.url, "Path": "/health"}}
    down = {"Name": "Down", "Kind": "http_check", "Timeout": 1, "Parameters": {"Url": receiver.url + "/down"}}
    mini.add_pipeline(private_ok, bob, "green", [check])
    mini.add_pipeline(private_ok, bob, "red", [down])
    assert inline(runs.request_run, private_ok, "green", bob).pk
    assert inline(runs.request_run, private_ok, "red", bob).pk
    assert sent_events()[-4:] == [
        "deployment_started",
        "deployment_succeeded",
        "deployment_started",
        "deployment_failed",
    ]

    boto3.client("logs", region_name="us-east-1").put_retention_policy(
        logGroupName="/tonys/api", retentionInDays=30
    )
    inline(refresh_workspace, private_ok.pk)
    inline(refresh_workspace, private_ok.pk)  # the same drift again: told once
    assert sent_events()[-1] == "drift_found" and sent_events().count("drift_found") == 1

    assert set(sent_events()) == set(EVENTS)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    posts = receiver.posts("/all")
    assert len(posts) == Delivery.objects.count() and all(verified(p, SECRET) for p in posts)
    texts = {d.event: d.payload["text"] for d in Delivery.objects.order_by("pk")}
    assert (
        texts["rejected"]
        == f"[tonys-chips] alice rejected change set #{cs.pk} log-retention: Keep them 7 days, and say why."
    )
    assert texts["apply_failed"].startswith(
        f"[tonys-chips] Apply #{bad.apply_runs.get().pk} of change set #{bad.pk}"
    )
    assert "InvalidSubnet.Range" in texts["apply_failed"]
    assert texts["deployment_failed"].startswith("[tonys-chips] Deployment #")
    assert texts["drift_found"] == "[tonys-chips] A refresh found drift in 1 component(s): logs."
    urls = {d.event: d.payload["url"] for d in Delivery.objects.order_by("pk")}
    assert urls["drift_found"].endswith("/workspaces/tonys-chips/components/?status=drifted")
    red = private_ok.pipeline_runs.get(pipeline="red")
    assert urls["deployment_failed"].endswith(f"/workspaces/tonys-chips/deployments/runs/{red.pk}/")


def test_a_target_that_is_down_never_holds_up_an_apply(
    private_ok, admin, bob, alice, closed_port, inline, applier, settings
):
    settings.PORTAL_NOTIFY_MAX_ATTEMPTS = 2
    targets.create_target(
        private_ok, admin, "down", "webhook", f"http://127.0.0.1:{closed_port}/hook", list(EVENTS)
    )
    cs = propose(
        private_ok, bob, {"logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/tonys/web"})}, "web-logs"
    )
    inline(approvals.request_approval, cs, bob)
    inline(approvals.approve, cs, alice)

    run = applier(cs, alice)

    assert run.status == RunStatus.SUCCEEDED
    cs.refresh_from_db()
    assert cs.status == ChangeSetStatus.APPLIED
    assert Component.objects.get(name="logs").resource_id == "/tonys/web"
    assert AuditEvent.objects.filter(change_set=cs, verb="apply.succeeded").exists()
    applied = Delivery.objects.get(event="applied")
    assert (applied.status, applied.attempts) == ("failed", 2)
    assert applied.error.startswith("no answer: ")


def test_a_listener_that_fails_neither_undoes_the_change_nor_stops_the_others(
    private_ok, admin, bob, receiver, inline
):
    def broken(events):
        raise RuntimeError("a listener's bug")

    targets.create_target(
        private_ok, admin, "hook", "webhook", receiver.url + "/hook", ["approval_requested"]
    )
    registry.register_audit_listener(broken)
    try:
        cs = propose(private_ok, bob, {"logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/tonys/x"})}, "x")
        inline(approvals.request_approval, cs, bob)
    finally:
        registry._audit_listeners.remove(broken)

    cs.refresh_from_db()
    assert cs.status == ChangeSetStatus.NEEDS_APPROVAL
    assert Delivery.objects.get().status == "succeeded"


def test_the_audit_listener_hears_events_written_in_bulk_once_committed(workspace, bob, inline):
    heard = []

    def listen(events):
        heard.append([(e.pk, e.verb, e.target) for e in events])

    registry.register_audit_listener(listen)
    try:
        cs = changesets.create_change_set(workspace, bob, "bulk")
        assert heard == []  # not before the commit
        inline(
            changesets.upsert_component,
            cs,
            bob,
            "logs",
            "AWS::Logs::LogGroup",
            {"LogGroupName": "/tonys/bulk"},
        )
    finally:
        registry._audit_listeners.remove(listen)

    [written] = [batch for batch in heard if any(target == "logs" for _, _, target in batch)]
    assert all(pk is not None for pk, _, _ in written)
    assert [(verb, target) for _, verb, target in written] == list(
        AuditEvent.objects.filter(target="logs").values_list("verb", "target")
    )
