"""Django admin: every model is there; the workflow's rows are read-only."""

import pytest
from django.contrib import admin

from portal.models import (
    Approval,
    AuditEvent,
    ChangeSet,
    ChangeSetEntry,
    Component,
    Membership,
    Subscription,
    Workspace,
)
from workers.models import Action, ApplyRun, WorkerHeartbeat

READ_ONLY = [
    Component,
    ChangeSet,
    ChangeSetEntry,
    Subscription,
    AuditEvent,
    Approval,
    ApplyRun,
    Action,
    WorkerHeartbeat,
]


def test_it_registers_every_model():
    for model in [Workspace, *READ_ONLY]:
        assert admin.site.is_registered(model), model
    assert Membership in [i.model for i in admin.site._registry[Workspace].inlines]


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_it_keeps_workflow_rows_read_only(rf, admin_user, model):
    model_admin = admin.site._registry[model]
    request = rf.get("/")
    request.user = admin_user
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_it_shows_apply_runs_to_staff(admin_client, db):
    assert admin_client.get("/admin/workers/applyrun/").status_code == 200
    assert admin_client.get("/admin/portal/approval/").status_code == 200
    assert admin_client.get("/admin/workers/workerheartbeat/").status_code == 200


def test_it_names_change_set_entries_in_plain_english(admin_client, db):
    index = admin_client.get("/admin/").content.decode()
    assert "Change set entries" in index and "entrys" not in index
