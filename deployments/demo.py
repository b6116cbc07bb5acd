"""The Tony's Chips demo: users, the workspace from examples/tonys-chips/, applied to
AWS (the embedded local AWS on a laptop) through the normal change-set workflow, and
the seed's first change sets opened for review."""

import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from portal import approvals, changesets, workspaces
from portal.models import Role, Workspace
from portal.spec import load_spec
from workers.apply import request_apply
from workers.models import ApplyRun

EXAMPLE = Path(settings.BASE_DIR) / "examples" / "tonys-chips"
DEMO_USERS = [
    ("bob", "bob-demo-pass", "editor"),
    ("alice", "alice-demo-pass", "approver"),
    ("admin", "admin-demo-pass", "admin"),
]
OPEN_CHANGE_SETS = ["01-update-smoke-test-to-use-e2e.yaml", "02-migrate-to-service-discovery.yaml"]


def _users():
    User = get_user_model()
    out = {}
    for username, password, _role in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.is_staff = user.is_superuser = username == "admin"
            user.save()
        out[username] = user
    return out


def load_demo(apply=True, log=print, timeout=600):
    if Workspace.objects.filter(slug="tonys-chips").exists():
        return "The demo workspace tonys-chips is already loaded."
    users = _users()
    spec = load_spec(EXAMPLE / "workspace.yaml")
    with transaction.atomic():
        ws = workspaces.create_workspace(
            "tonys-chips", "Tony's Chips sandbox", region="us-east-1", approvals_required=1
        )
        for username, _password, role in DEMO_USERS:
            workspaces.add_member(ws, users[username], Role(role))
        bootstrap = changesets.create_change_set(
            ws,
            users["bob"],
            "bootstrap-tonys-chips",
            problem="The sandbox has no infrastructure in the portal yet.",
            solution="Model the existing VPC, ALB, ECS services, database and pipeline as components.",
        )
        changesets.apply_spec(bootstrap, users["bob"], spec)
        approvals.request_approval(bootstrap, users["bob"])
        approvals.approve(bootstrap, users["alice"], "Matches the sandbox as it runs today.")
    if apply:
        run = request_apply(bootstrap, users["alice"])
        log(f"Applying the demo workspace to AWS (apply #{run.pk}, {run.actions.count()} actions)…")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = ApplyRun.objects.get(pk=run.pk)
            if run.is_finished:
                break
            time.sleep(1)
        log(f"Apply #{run.pk}: {run.status}{' — ' + run.error if run.error else ''}")
    else:
        changesets.merge(bootstrap, users["bob"])
    for filename in OPEN_CHANGE_SETS:
        change = load_spec(EXAMPLE / filename)
        info = change.change_set or {}
        cs = changesets.create_change_set(
            ws,
            users["bob"],
            info.get("name") or filename.rsplit(".", 1)[0][3:],
            problem=info.get("problem", ""),
            solution=info.get("solution", ""),
        )
        changesets.apply_spec(cs, users["bob"], change)
    return f"Demo workspace tonys-chips loaded: {ws.components.count()} components, {len(OPEN_CHANGE_SETS)} change sets open for review."
