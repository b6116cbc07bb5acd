"""manage.py deploy: run (with --wait and its exit code), show, list, export, approve."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from deployments.models import PipelineRun, RunStatus

from . import mini as m


def run(*argv):
    out, err = StringIO(), StringIO()
    call_command(*argv, stdout=out, stderr=err)
    return out.getvalue()


@pytest.fixture
def ecs(aws, monkeypatch):
    return m.make_ecs(monkeypatch)


@pytest.fixture
def seed(workspace, bob, ecs):
    return m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs), RollbackOnFailure=True)


@pytest.mark.django_db(transaction=True)
def test_it_runs_a_pipeline_and_waits_for_it(workspace, seed, eager_celery):
    out = run("deploy", "run", "--workspace", "tonys-chips", "--pipeline", "seed", "--user", "bob", "--wait")
    run_ = PipelineRun.objects.get()
    assert run_.status == RunStatus.SUCCEEDED
    assert out.splitlines()[0] == f"Deployment #{run_.pk} of seed in tonys-chips: succeeded"
    assert "  succeeded RunMigrations (run_task)" in out


@pytest.mark.django_db(transaction=True)
def test_it_exits_non_zero_when_the_run_fails(workspace, seed, eager_celery, aws_calls):
    aws_calls.on_response(
        "ecs", "RunTask", m.fail_task("mini-migrate", 3, "Essential container in task exited")
    )
    with pytest.raises(SystemExit) as exit_:
        run("deploy", "run", "--workspace", "tonys-chips", "--pipeline", "seed", "--user", "bob", "--wait")
    assert exit_.value.code == 1
    assert PipelineRun.objects.get().status == RunStatus.FAILED


def test_it_shows_a_run_with_its_log(workspace, bob, seed, run_pipeline):
    done = run_pipeline(workspace, "seed", bob)
    text = run("deploy", "show", str(done.pk))
    assert f"Deployment #{done.pk} of seed in tonys-chips: succeeded" in text
    assert "DeployServices (deploy_services)" in text and "log:" in text and "desired count kept at 4" in text
    shown = json.loads(run("deploy", "show", str(done.pk), "--json"))
    assert [s["status"] for s in shown["stages"]] == ["succeeded"] * 4
    assert shown["stages"][1]["result"]["previous"]


def test_it_lists_and_exports_pipelines(workspace, seed, tmp_path):
    assert "seed: RunMigrations (run_task) -> DeployServices (deploy_services)" in run(
        "deploy", "list", "--workspace", "tonys-chips"
    )
    definition = json.loads(run("deploy", "export", "--workspace", "tonys-chips", "--pipeline", "seed"))
    assert definition["StartAt"] == "RunMigrations" and "RollBack" in definition["States"]
    target = tmp_path / "machine.json"
    assert "Wrote" in run(
        "deploy", "export", "--workspace", "tonys-chips", "--pipeline", "seed", "--output", str(target)
    )
    assert json.loads(target.read_text()) == definition


def test_approvers_let_a_waiting_run_go_on(workspace, bob, run_pipeline, django_capture_on_commit_callbacks):
    m.add_pipeline(workspace, bob, "gated", [{"Name": "Promote", "Kind": "approval_gate"}])
    waiting = run_pipeline(workspace, "gated", bob)
    with pytest.raises(CommandError, match="this needs approver or above"):
        run("deploy", "approve", str(waiting.pk), "--user", "bob")
    with django_capture_on_commit_callbacks(execute=True):
        out = run("deploy", "approve", str(waiting.pk), "--user", "alice", "--comment", "go")
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.SUCCEEDED and "succeeded" in out
    with pytest.raises(CommandError, match="is not waiting at an approval gate"):
        run("deploy", "approve", str(waiting.pk), "--user", "alice")


def test_whoever_started_a_run_cannot_approve_its_gate(
    workspace, alice, bob, run_pipeline, django_user_model, django_capture_on_commit_callbacks
):
    carol = django_user_model.objects.create_user("carol")
    workspace.memberships.create(user=carol, role="approver")
    m.add_pipeline(workspace, bob, "gated", [{"Name": "Promote", "Kind": "approval_gate"}])
    waiting = run_pipeline(workspace, "gated", alice)
    with pytest.raises(CommandError, match=f"You started deployment #{waiting.pk}") as refused:
        run("deploy", "approve", str(waiting.pk), "--user", "alice")
    assert refused.value.returncode == 4
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.RUNNING
    with django_capture_on_commit_callbacks(execute=True):
        run("deploy", "approve", str(waiting.pk), "--user", "carol")
    waiting.refresh_from_db()
    assert waiting.status == RunStatus.SUCCEEDED
    assert waiting.stages.get().decided_by == carol


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("deploy", "run", "--workspace", "nope", "--pipeline", "x", "--user", "bob"), "No workspace 'nope'"),
        (
            ("deploy", "run", "--workspace", "tonys-chips", "--pipeline", "x", "--user", "bob"),
            "No pipeline 'x'",
        ),
        (
            ("deploy", "run", "--workspace", "tonys-chips", "--pipeline", "x", "--user", "mallory"),
            "No workspace",
        ),
        (("deploy", "show", "999"), "No deployment #999"),
        (("deploy", "export", "--workspace", "tonys-chips", "--pipeline", "x"), "No pipeline 'x'"),
    ],
)
def test_it_explains_what_is_wrong(workspace, argv, message):
    with pytest.raises(CommandError, match=message):
        run(*argv)
