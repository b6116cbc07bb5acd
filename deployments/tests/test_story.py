"""The seed's whole story through the engine: the Tony's Chips sandbox applied, the seven
change sets applied in order (02 meeting the seed's Challenge 1, "ECS Deployment hook
execution failure(s) detected", which 03 resolves by recreating the service), the
pipeline run, then the group build log read back as the seed's Markdown."""

import json
import re

import pytest
from django.urls import reverse

from deployments import buildlogs, markdown
from deployments.models import BuildLog, RunStatus
from portal.models import EntryOp
from portal.secrets import MASK
from workers.models import RunStatus as ApplyStatus

from . import mini as m
from .conftest import PIPELINE, SEED_FILES, propose

SECRET = "chips-session-s3cr3t-42"
HOOK_FAILURE = "ECS Deployment hook execution failure(s) detected"


def add_session_secret(spec):
    """The web task reads SESSION_SECRET (the seed's Next Steps mention it) — here as a
    literal value, to prove that no build log ever shows it."""
    web = spec.component("sandbox-tonys-chips-web-task").properties
    web["ContainerDefinitions"][0]["Environment"].append({"Name": "SESSION_SECRET", "Value": SECRET})


def section(text, start, end_marker="\n## "):
    begin = text.index(start)
    end = text.find(end_marker, begin + len(start))
    return text[begin : end if end != -1 else len(text)]


@pytest.fixture
def story(tonys_chips, bob, alice, applier, aws_calls, run_pipeline):
    # On AWS, adding ServiceRegistries to the running api service failed (the seed's Challenge 1).
    aws_calls.fail(
        "ecs",
        "UpdateService",
        "InvalidParameterException",
        f"{HOOK_FAILURE} (while the task had SESSION_SECRET={SECRET})",
        when=lambda body: bool(body.get("serviceRegistries")),
    )
    applied = {}
    for filename in SEED_FILES:
        edit = add_session_secret if filename.startswith("06") else None
        cs = propose(tonys_chips, bob, alice, filename, edit=edit)
        applied[filename] = (cs, applier(cs, alice))
    run = run_pipeline(tonys_chips, PIPELINE, bob)
    return applied, run


def test_the_migration_build_log_tells_the_whole_story(story, tonys_chips, alice, bob, client):
    applied, deployment = story
    statuses = {f[:2]: run.status for f, (_, run) in applied.items()}
    assert statuses == {f"{i:02d}": ApplyStatus.SUCCEEDED for i in range(1, 8)} | {"02": ApplyStatus.FAILED}
    assert deployment.status == RunStatus.SUCCEEDED, deployment.error
    api = m.ecs_backend().services["tonys-chips-sandbox:sandbox-tonys-chips-api"]
    assert api.desired_count == 4  # scaled to 4 by change set 05, still 4 after the deploy

    change_sets = [cs for cs, _ in applied.values()]
    log = buildlogs.create_group(
        tonys_chips, [cs.pk for cs in change_sets], alice, "Service Discovery & Deployment Improvements"
    )
    buildlogs.update_notes(
        log,
        bob,
        lessons="1. **Always check AWS service limitations** - ServiceRegistries needed a new service",
        next_steps="1. Implement proper secrets rotation for SESSION_SECRET",
    )
    log.refresh_from_db()
    text = markdown.render(log)

    # The seed's section structure, in the seed's order.
    assert text.startswith("# Service Discovery & Deployment Improvements - Build Log\n\n**Date:** ")
    headings = re.findall(r"^(#{1,2} .+)$", text, re.M)
    assert headings == [
        "# Service Discovery & Deployment Improvements - Build Log",
        "## Overview",
        *[f"## Phase {i}: {cs.name}" for i, cs in enumerate(change_sets, 1)],
        "## Deployment Notes",
        "## Technical Challenges & Solutions",
        "## Lessons Learned",
        "## Next Steps",
    ]
    change_set_list = section(text, "**Change Sets:**", "\n\n")
    assert change_set_list.splitlines()[1:] == [f"- `{cs.name}`" for cs in change_sets]
    assert "**Status:** Completed" in text
    assert text.count("### Problem Statement") == text.count("### Solution") == 7
    for block in re.findall(r"```json\n(.*?)\n```", text, re.S):
        json.loads(block)

    # Every change set's problem and solution, and every component change under its heading.
    headings_for = {EntryOp.ADD: "Created", EntryOp.DELETE: "Deleted"}
    for i, (filename, (cs, run)) in enumerate(applied.items(), 1):
        phase = section(text, f"## Phase {i}: {cs.name}")
        assert cs.problem.strip().splitlines()[0] in phase and cs.solution.strip().splitlines()[0] in phase
        for entry in cs.entries.all():
            replaced = (
                entry.replace or run.actions.filter(component_id=entry.component_id, kind="replace").exists()
            )
            heading = headings_for.get(entry.op) or ("Replaced" if replaced else "Updated")
            assert f"`{entry.name}`" in section(phase, f"#### Components {heading}", "\n#### "), (
                filename,
                entry.name,
            )
        for action in run.actions.all():
            assert f"`{action.key}`" in phase, (filename, action.key)  # every action and its outcome
    phase2 = section(text, "## Phase 2: migrate-to-service-discovery")
    assert "`sandbox-tonys-chips-private-dns-namespace`" in section(
        phase2, "#### Components Created", "\n#### "
    )
    assert "`sandbox-tonys-chips-api-tg`" in section(phase2, "#### Components Deleted", "\n#### ")
    assert "- **Outcome:** failed: InvalidParameterException: " + HOOK_FAILURE in phase2
    phase3 = section(text, "## Phase 3: recreate-api-service-with-service-discovery")
    assert "`sandbox-tonys-chips-api-service`" in section(phase3, "#### Components Replaced", "\n#### ")
    phase5 = section(text, "## Phase 5: scale-up-api-and-update-web-service")
    assert '"/DesiredCount": {\n    "before": 2,\n    "after": 4\n  }' in phase5
    phase1 = section(text, "## Phase 1: update-smoke-test-to-use-e2e")
    assert '"before": "test:smoke",\n    "after": "test:e2e"' in phase1
    phase7 = section(text, "## Phase 7: fix-step-functions-graceful-deployment")
    assert "`sandbox-tonys-chips-deploy-state-machine`" in phase7  # followed the template it subscribes to

    # Every stage outcome.
    notes = section(text, "## Deployment Notes")
    assert f"### Deployment #{deployment.pk}: {PIPELINE} (succeeded)" in notes
    for i, name in enumerate(["RunMigrations", "DeployServices", "WaitForHealthy", "RunSmokeTests"], 1):
        assert re.search(
            rf"^{i}\. \*\*{name}\*\* \((run_task|deploy_services|wait_healthy)\) - succeeded", notes, re.M
        )
    assert "exited with code 0" in notes and "desired" not in notes.lower().replace("running", "")

    # The error met, and the change set that resolved it.
    challenges = section(text, "## Technical Challenges & Solutions")
    assert "### Challenge 1: sandbox-tonys-chips-api-service: update failed" in challenges
    assert HOOK_FAILURE in challenges
    assert "**Solution:** Resolved by change set `recreate-api-service-with-service-discovery`" in challenges
    assert "Always check AWS service limitations" in section(text, "## Lessons Learned")
    assert "secrets rotation" in section(text, "## Next Steps")
    assert text.rstrip().endswith("**Build completed successfully** ✅")

    # No secret value anywhere: the Markdown, the stored snapshot, the search text.
    for where in (text, json.dumps(log.data), log.search_text):
        assert SECRET not in where
    assert f'"Value": "{MASK}"' in section(text, "## Phase 6: fix-health-checks-use-nodejs")
    assert f"SESSION_SECRET={MASK}" in challenges

    # The page says the same, without the secret either.
    client.force_login(alice)
    page = client.get(reverse("deployments:buildlog", args=[tonys_chips.slug, log.pk])).content.decode()
    assert "Phase 7: fix-step-functions-graceful-deployment" in page and HOOK_FAILURE in page
    assert "-                &quot;DesiredCount&quot;: 2," in page  # the template's change, as a diff
    assert SECRET not in page

    # Every apply and the deployment have their own build log as well.
    assert BuildLog.objects.filter(kind="apply").count() == 8
    assert BuildLog.objects.filter(kind="deployment").get().pipeline_runs.get() == deployment
    assert SECRET not in "".join(markdown.render(x) for x in BuildLog.objects.all())
