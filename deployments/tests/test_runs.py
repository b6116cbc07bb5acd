"""Deployment runs against moto: the seed's pipeline green on the Tony's Chips sandbox,
each stage failing with its reason, DesiredCount never sent, rollback, approval gates,
one run at a time per pipeline, and runs triggered by an apply."""

import json

import pytest

from deployments import runs
from deployments.models import LogLine, PipelineRun, RunStatus, StageStatus
from portal import approvals, changesets
from portal.errors import ConflictError, PermissionDenied, ValidationError
from portal.models import AuditEvent, Component

from . import mini as m
from .conftest import PIPELINE


@pytest.fixture
def ecs(aws, monkeypatch):
    return m.make_ecs(monkeypatch)


def statuses(run):
    return {s.name: s.status for s in run.stages.all()}


def stage(run, name):
    return run.stages.get(name=name)


# --- The seed's pipeline on the seed's sandbox ----------------------------------------------------


def test_it_runs_the_seed_pipeline_green_without_ever_sending_desired_count(
    tonys_chips, bob, run_pipeline, aws_calls
):
    ecs = m.ecs_backend()
    api = Component.objects.get(name="sandbox-tonys-chips-api-service")
    api_before = next(s for s in ecs.services.values() if s.name == "sandbox-tonys-chips-api")
    deployment_before = api_before.deployments[0]["id"]
    aws_calls.calls.clear()

    run = run_pipeline(tonys_chips, PIPELINE, bob)

    assert run.status == RunStatus.SUCCEEDED, runs.run_text(runs.describe_run(run))
    assert list(statuses(run).items()) == [
        ("RunMigrations", "succeeded"),
        ("DeployServices", "succeeded"),
        ("WaitForHealthy", "succeeded"),
        ("RunSmokeTests", "succeeded"),
    ]
    updates = aws_calls.of("ecs", "UpdateService")
    assert len(updates) == 2
    assert all("desiredCount" not in body and body["forceNewDeployment"] is True for body in updates)
    assert {u["service"] for u in updates} == {
        api.resource_value["ServiceArn"],
        Component.objects.get(name="sandbox-tonys-chips-web-service").resource_value["ServiceArn"],
    }
    assert api_before.deployments[0]["id"] != deployment_before  # a new deployment was forced
    [migrations, smoke] = aws_calls.of("ecs", "RunTask")
    assert migrations["taskDefinition"].split("/")[-1].startswith("sandbox-tonys-chips-migrations:")
    assert smoke["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == [
        Component.objects.get(name="sandbox-tonys-chips-api-sg-v2").resource_id
    ]
    override = smoke["overrides"]["containerOverrides"][0]
    alb = Component.objects.get(name="sandbox-tonys-chips-alb").resource_value["DNSName"]
    assert override["name"] == "smoke-test"
    assert {"name": "WEB_URL", "value": alb} in override["environment"]
    assert stage(run, "RunMigrations").result["exit_codes"] == {"migrations": 0}
    assert stage(run, "WaitForHealthy").result["services"]["sandbox-tonys-chips-api"]["state"] == "healthy"
    assert AuditEvent.objects.filter(verb="deployment.succeeded", workspace=tonys_chips).exists()
    assert run.build_logs.filter(kind="deployment").count() == 1


def test_a_service_scaled_to_four_is_still_at_four_after_a_deploy(
    workspace, bob, ecs, run_pipeline, aws_calls
):
    m.add_pipeline(
        workspace,
        bob,
        "deploy",
        [m.deploy_stage(ecs, [ecs.api, ecs.web]), m.wait_stage(ecs, [ecs.api, ecs.web])],
    )
    assert m.describe(ecs, ecs.web)["desiredCount"] == 4

    run = run_pipeline(workspace, "deploy", bob)

    assert run.status == RunStatus.SUCCEEDED, run.error
    web = m.describe(ecs, ecs.web)
    assert web["desiredCount"] == 4 and web["runningCount"] == 4
    assert [("desiredCount" in body) for body in aws_calls.of("ecs", "UpdateService")] == [False, False]
    assert stage(run, "DeployServices").result["previous"][ecs.web]["desired_count"] == 4
    assert "desired count kept at 4" in " ".join(run.log_lines.values_list("message", flat=True))


# --- Each stage failing, with its reason ----------------------------------------------------------


def test_it_stops_when_the_migrations_task_exits_non_zero(workspace, bob, ecs, run_pipeline, aws_calls):
    m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs))
    aws_calls.on_response(
        "ecs", "RunTask", m.fail_task("mini-migrate", 1, "Essential container in task exited")
    )

    run = run_pipeline(workspace, "seed", bob)

    assert run.status == RunStatus.FAILED
    assert statuses(run) == {
        "RunMigrations": "failed",
        "DeployServices": "skipped",
        "WaitForHealthy": "skipped",
        "RunSmokeTests": "skipped",
    }
    migrations = stage(run, "RunMigrations")
    assert "container migrate exited with code 1, expected 0" in migrations.error
    assert "ECS says: Essential container in task exited" in migrations.error
    assert migrations.result["exit_codes"] == {"migrate": 1}
    assert migrations.result["stopped_reason"] == "Essential container in task exited"
    assert run.error.startswith("RunMigrations: task ")
    assert aws_calls.of("ecs", "UpdateService") == []  # nothing was deployed


def test_it_fails_a_task_that_does_not_stop_in_time_and_stops_it(
    workspace, bob, ecs, run_pipeline, aws_calls
):
    m.add_pipeline(
        workspace, bob, "slow", [{**m.run_task_stage(ecs, "RunMigrations", ecs.migrate_td), "Timeout": 1}]
    )

    def still_running(parsed):
        for task in parsed.get("tasks") or []:
            task["lastStatus"] = "RUNNING"

    aws_calls.on_response("ecs", "DescribeTasks", still_running)
    run = run_pipeline(workspace, "slow", bob)

    assert run.status == RunStatus.FAILED
    error = stage(run, "RunMigrations").error
    assert error.startswith("timed out after 1 s waiting for task ")
    assert "(it was RUNNING); the portal stopped it" in error
    [stop] = aws_calls.of("ecs", "StopTask")
    assert "timed out" in stop["reason"]


def test_it_says_when_aws_refuses_a_deployment(workspace, bob, ecs, run_pipeline, aws_calls):
    m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs))
    aws_calls.fail(
        "ecs",
        "UpdateService",
        "AccessDeniedException",
        "not authorized to perform ecs:UpdateService",
        when=lambda body: body.get("service") == ecs.web,
    )

    run = run_pipeline(workspace, "seed", bob)

    assert run.status == RunStatus.FAILED
    deploy = stage(run, "DeployServices")
    assert deploy.error == (
        "deployment failed for mini-web: AccessDeniedException: not authorized to perform ecs:UpdateService"
    )
    assert list(deploy.result["services"]) == [ecs.api]  # the api went out; the run says which did not
    assert statuses(run)["WaitForHealthy"] == "skipped"


def test_it_times_out_waiting_for_a_rollout_that_does_not_complete(
    workspace, bob, aws, monkeypatch, run_pipeline
):
    ecs = m.make_ecs(monkeypatch, running=False)
    m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs))

    run = run_pipeline(workspace, "seed", bob)

    assert run.status == RunStatus.FAILED
    error = stage(run, "WaitForHealthy").error
    assert error.startswith("timed out after 2 s waiting for mini-api (deployment ecs-svc/")
    assert "in_progress: 0/2 running" in error and "mini-web (deployment" in error
    assert stage(run, "WaitForHealthy").result["services"]["mini-web"] == {
        "state": "waiting",
        "detail": error.split("mini-web (")[1].rstrip(")"),
        "running": 0,
        "desired": 4,
        "deployment": stage(run, "DeployServices").result["services"][ecs.web]["deployment"],
    }
    assert statuses(run)["RunSmokeTests"] == "skipped"


def test_it_stops_when_a_rollout_fails(workspace, bob, ecs, run_pipeline):
    m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs))
    m.set_rollout(ecs.api, "FAILED", "ECS deployment circuit breaker: 3 tasks failed to start.")

    run = run_pipeline(workspace, "seed", bob)

    assert run.status == RunStatus.FAILED
    assert stage(run, "WaitForHealthy").error == (
        "mini-api: rollout failed: ECS deployment circuit breaker: 3 tasks failed to start."
    )
    assert run.log_lines.filter(level="error", message__contains="rollout failed").exists()


def test_it_stops_when_the_smoke_tests_fail_and_rolls_the_services_back(
    workspace, bob, ecs, run_pipeline, aws_calls
):
    # CI registered new revisions; the services still run the ones before.
    api_v2, web_v2 = ecs.register("mini-api", "api"), ecs.register("mini-web", "web")
    m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs), RollbackOnFailure=True)
    aws_calls.on_response(
        "ecs", "RunTask", m.fail_task("mini-smoke", 2, "Essential container in task exited")
    )

    run = run_pipeline(workspace, "seed", bob)

    assert run.status == RunStatus.FAILED
    assert "container smoke exited with code 2" in stage(run, "RunSmokeTests").error
    assert run.rollback_status == "done"
    restored = {
        s: (r["task_definition"], r["state"], r["error"]) for s, r in run.rollback["services"].items()
    }
    assert restored == {ecs.api: (ecs.api_td, "healthy", None), ecs.web: (ecs.web_td, "healthy", None)}
    assert run.rollback["services"][ecs.web]["detail"].endswith("completed: 4/4 running")
    deployed, restored = aws_calls.of("ecs", "UpdateService")[:2], aws_calls.of("ecs", "UpdateService")[2:]
    assert {b["taskDefinition"] for b in deployed} == {api_v2, web_v2}  # the latest revisions went out
    assert {b["taskDefinition"] for b in restored} == {ecs.api_td, ecs.web_td}  # and came back
    assert all("desiredCount" not in b for b in deployed + restored)
    assert m.describe(ecs, ecs.api)["taskDefinition"] == ecs.api_td
    assert m.describe(ecs, ecs.web)["taskDefinition"] == ecs.web_td
    assert m.describe(ecs, ecs.web)["desiredCount"] == 4
    assert AuditEvent.objects.filter(verb="deployment.rolled_back").exists()
    messages = list(run.log_lines.values_list("message", flat=True))
    assert "rolled mini-api back to mini-api:1" in messages
    assert "mini-web is healthy again on mini-web:1" in messages  # the rollback waited for it


def test_it_does_not_roll_back_unless_the_pipeline_asks_for_it(workspace, bob, ecs, run_pipeline, aws_calls):
    ecs.register("mini-api", "api")
    m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs), RollbackOnFailure=False)
    aws_calls.on_response("ecs", "RunTask", m.fail_task("mini-smoke", 1, "tests failed"))

    run = run_pipeline(workspace, "seed", bob)

    assert run.status == RunStatus.FAILED and run.rollback_status == ""
    assert len(aws_calls.of("ecs", "UpdateService")) == 2


# --- http_check ----------------------------------------------------------------------------------


def test_it_checks_an_http_endpoint_from_the_worker(workspace, bob, run_pipeline, http_server):
    workspace.allow_private_http_checks = True  # the test server listens on loopback
    workspace.save()
    m.add_pipeline(
        workspace,
        bob,
        "check",
        [
            {"Name": "Health", "Kind": "http_check", "Parameters": {"Url": http_server, "Path": "/health"}},
            {
                "Name": "Down",
                "Kind": "http_check",
                "Timeout": 1,
                "Parameters": {"Url": http_server + "/down"},
            },
        ],
    )

    run = run_pipeline(workspace, "check", bob)

    assert stage(run, "Health").status == StageStatus.SUCCEEDED
    assert stage(run, "Health").result["outcome"]["summary"] == f"GET {http_server}/health answered 200"
    down = stage(run, "Down")
    assert down.status == StageStatus.FAILED
    assert down.error.startswith(f"GET {http_server}/down answered 503 (expected 200) after ")


# --- Approval gates ------------------------------------------------------------------------------


@pytest.fixture
def gated(workspace, bob, ecs):
    return m.add_pipeline(
        workspace,
        bob,
        "gated",
        [
            {"Name": "Promote", "Kind": "approval_gate", "Parameters": {"Message": "Promote to production?"}},
            m.run_task_stage(ecs, "RunMigrations", ecs.migrate_td),
        ],
    )


def test_an_approval_gate_waits_for_an_approver(workspace, bob, alice, gated, run_pipeline, inline):
    run = run_pipeline(workspace, gated, bob)
    gate = stage(run, "Promote")
    assert run.status == RunStatus.RUNNING and gate.status == StageStatus.WAITING
    with pytest.raises(PermissionDenied):
        runs.decide_gate(gate, bob, True)  # the author of the run is an editor, not an approver

    inline(runs.decide_gate, gate, alice, True, "staging looked fine")

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    gate.refresh_from_db()
    assert (gate.decided_by, gate.decision_comment) == (alice, "staging looked fine")
    assert AuditEvent.objects.filter(verb="deployment.gate_approved", actor=alice).exists()
    with pytest.raises(ConflictError, match="not waiting for an approver"):
        runs.decide_gate(gate, alice, True)


def test_an_approver_can_stop_a_run_at_the_gate_saying_why(
    workspace, bob, alice, gated, run_pipeline, inline
):
    run = run_pipeline(workspace, gated, bob)
    gate = stage(run, "Promote")
    with pytest.raises(ValidationError, match="Say why"):
        runs.decide_gate(gate, alice, False, "")

    inline(runs.decide_gate, gate, alice, False, "not on a Friday")

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == "Promote: rejected by alice: not on a Friday"
    assert statuses(run)["RunMigrations"] == "skipped"


def test_one_run_of_a_pipeline_at_a_time(workspace, bob, alice, gated, run_pipeline, inline):
    first = run_pipeline(workspace, gated, bob)
    second = run_pipeline(workspace, gated, bob)
    assert second.status == RunStatus.QUEUED
    assert LogLine.objects.filter(
        run=second, message=f"waiting for deployment #{first.pk} of gated to finish"
    ).exists()

    inline(runs.decide_gate, stage(first, "Promote"), alice, True)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == RunStatus.SUCCEEDED
    assert second.status == RunStatus.RUNNING and stage(second, "Promote").status == StageStatus.WAITING
    assert second.started_at >= first.finished_at


# --- Refusals ------------------------------------------------------------------------------------


def test_it_refuses_a_run_whose_values_are_not_known_yet(workspace, bob):
    cs = changesets.create_change_set(workspace, bob, "pipeline before its cluster exists")
    changesets.upsert_component(cs, bob, "cluster", "AWS::ECS::Cluster", {"ClusterName": "c"})
    cluster_arn = {"$source": {"component": "cluster", "path": "/resource_value/Arn"}}
    deploy = {"Cluster": cluster_arn, "Services": [{"Service": "s"}]}
    stages = [{"Name": "Deploy", "Kind": "deploy_services", "Parameters": deploy}]
    changesets.upsert_component(cs, bob, "early", "Portal::Pipeline", {"Stages": stages})
    changesets.merge(cs, bob)

    with pytest.raises(ValidationError, match=r"/Stages/0/Parameters/Cluster: its source has no value yet"):
        runs.request_run(workspace, "early", bob)
    assert not PipelineRun.objects.exists()


def test_outsiders_and_viewers_cannot_run_a_pipeline(workspace, bob, mallory, ecs):
    from portal.errors import NotFound

    m.add_pipeline(workspace, bob, "seed", m.seed_like(ecs))
    with pytest.raises(NotFound):
        runs.request_run(workspace, "seed", mallory)
    with pytest.raises(NotFound, match="No pipeline 'nope'"):
        runs.request_run(workspace, "nope", bob)


# --- Triggered by an apply -----------------------------------------------------------------------


def _approved(workspace, bob, alice, name, components):
    cs = changesets.create_change_set(
        workspace, bob, name, problem=f"{name} problem", solution=f"{name} solution"
    )
    for component, (schema, props) in components.items():
        changesets.upsert_component(cs, bob, component, schema, props)
    approvals.request_approval(cs, bob)
    approvals.approve(cs, alice)
    return cs


def test_a_successful_apply_triggers_the_pipelines_that_ask_for_it(workspace, bob, alice, ecs, applier):
    m.add_pipeline(
        workspace,
        bob,
        "after-apply",
        [m.run_task_stage(ecs, "RunMigrations", ecs.migrate_td)],
        TriggerOnApply=True,
    )
    m.add_pipeline(workspace, bob, "by-hand", [m.run_task_stage(ecs, "RunMigrations", ecs.migrate_td)])
    cs = _approved(
        workspace, bob, alice, "logs", {"logs": ("AWS::Logs::LogGroup", {"LogGroupName": "/t/logs"})}
    )

    apply_run = applier(cs, alice)

    [run] = PipelineRun.objects.all()
    assert (run.pipeline, run.trigger, run.apply_run, run.requested_by) == (
        "after-apply",
        "apply",
        apply_run,
        alice,
    )
    assert run.status == RunStatus.SUCCEEDED
    apply_log = apply_run.build_logs.get(kind="apply")
    assert apply_log.data["followed_by"] == [
        {"run": run.pk, "pipeline": "after-apply", "status": "succeeded"}
    ]
    deployment_log = run.build_logs.get(kind="deployment")
    assert cs in deployment_log.change_sets.all()
    cs.refresh_from_db()
    [shipped] = deployment_log.data["deployments"]
    assert shipped["head_version"] == cs.merged_version
    assert {"id": cs.pk, "name": "logs", "merged_version": cs.merged_version} in shipped["change_sets"]


def test_a_failed_apply_triggers_nothing(workspace, bob, alice, ecs, applier):
    m.add_pipeline(
        workspace,
        bob,
        "after-apply",
        [m.run_task_stage(ecs, "RunMigrations", ecs.migrate_td)],
        TriggerOnApply=True,
    )
    cs = _approved(
        workspace,
        bob,
        alice,
        "bad subnet",
        {
            "vpc": ("AWS::EC2::VPC", {"CidrBlock": "10.0.0.0/16"}),
            "subnet": (
                "AWS::EC2::Subnet",
                {
                    "VpcId": {"$source": {"component": "vpc", "path": "/resource_value/VpcId"}},
                    "CidrBlock": "192.168.0.0/24",
                },
            ),
        },
    )
    apply_run = applier(cs, alice)

    assert apply_run.status == "failed"
    assert not PipelineRun.objects.exists()
    log = apply_run.build_logs.get()
    assert log.status == "failed"
    assert "InvalidSubnet.Range" in json.dumps(log.data)
