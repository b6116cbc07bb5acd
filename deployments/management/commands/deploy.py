"""manage.py deploy: run a pipeline, show a run, export a pipeline as Step Functions ASL."""

import json
from pathlib import Path

from deployments import asl, pipelines, runs
from deployments.models import PipelineRun, RunStatus, StageRun, StageStatus
from portal import workspaces
from portal.access import get_user
from portal.cli import PortalCommand, arg, args, object_id
from portal.errors import NotFound


def _run(run_id):
    run = PipelineRun.objects.select_related("workspace").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No deployment #{run_id}.")
    return run


class Command(PortalCommand):
    help = "Run deployment pipelines, follow and decide their runs, export them as Step Functions."
    verbs = {
        "run": (
            "Run a pipeline of a workspace (as HEAD resolves it now).",
            args(
                arg("--workspace", required=True),
                arg("--pipeline", required=True),
                arg("--user", required=True),
                arg(
                    "--wait", action="store_true", help="block until the run ends; exit non-zero if it failed"
                ),
                arg("--timeout", type=float, default=3600),
            ),
        ),
        "show": ("Show a deployment run: stages, outcome, log.", arg("id", type=object_id)),
        "list": ("List the pipelines of a workspace and its recent runs.", arg("--workspace", required=True)),
        "export": (
            "Print a pipeline as an AWS Step Functions state machine definition (ASL JSON).",
            args(
                arg("--workspace", required=True),
                arg("--pipeline", required=True),
                arg("--output", help="write the definition to this file instead"),
            ),
        ),
        "approve": (
            "Approve the approval gate a run waits at (approvers only).",
            args(arg("id", type=object_id), arg("--user", required=True), arg("--comment", default="")),
        ),
        "reject": (
            "Stop a run at its approval gate, saying why (approvers only).",
            args(arg("id", type=object_id), arg("--user", required=True), arg("--comment", required=True)),
        ),
    }

    def do_run(self, workspace, pipeline, user, wait, timeout, **_):
        ws = workspaces.get_workspace(workspace)
        run = runs.request_run(ws, pipeline, get_user(user))
        if not wait:
            return runs.describe_run(run)
        run = runs.wait_for_run(run, timeout, progress=lambda line: self.stderr.write(line))
        return runs.describe_run(run), 0 if run.status == RunStatus.SUCCEEDED else 1

    def text_run(self, r):
        return runs.run_text(r)

    def do_show(self, id, **_):
        return runs.describe_run(_run(id))

    def text_show(self, r):
        lines = [runs.run_text(r), "log:"]
        lines += [f"  {line['at']:%H:%M:%S} {line['message']}" for line in r["log"]]
        return "\n".join(lines)

    def do_list(self, workspace, **_):
        ws = workspaces.get_workspace(workspace)
        return {
            "workspace": ws.slug,
            "pipelines": [
                {
                    "name": p.name,
                    "stages": [f"{s.name} ({s.kind})" for s in p.stages],
                    "trigger_on_apply": p.trigger_on_apply,
                    "rollback_on_failure": p.rollback_on_failure,
                    "problems": pipelines.problems(p),
                }
                for p in pipelines.pipelines(ws)
            ],
            "runs": [
                {"run": r.pk, "pipeline": r.pipeline, "status": r.status, "created_at": r.created_at}
                for r in PipelineRun.objects.filter(workspace=ws)[:20]
            ],
        }

    def text_list(self, r):
        lines = [f"Pipelines of {r['workspace']}:"]
        for p in r["pipelines"]:
            ready = "ready" if not p["problems"] else f"cannot run: {p['problems'][0]['message']}"
            lines.append(f"  {p['name']}: {' -> '.join(p['stages'])} [{ready}]")
        lines.append("Recent runs:")
        lines += [f"  #{x['run']} {x['pipeline']} {x['status']}" for x in r["runs"]] or ["  none"]
        return "\n".join(lines)

    def do_export(self, workspace, pipeline, output, **_):
        ws = workspaces.get_workspace(workspace)
        definition = asl.export(pipelines.get_pipeline(ws, pipeline), asl.families_for(ws))
        if output:
            Path(output).write_text(json.dumps(definition, indent=2) + "\n")
            return {"written": output, "states": len(definition["States"])}
        return definition

    def text_export(self, r):
        if "written" in r:
            return f"Wrote {r['states']} states to {r['written']}."
        return json.dumps(r, indent=2)

    def _gate(self, id):
        stage = StageRun.objects.filter(run_id=id, kind=runs.GATE, status=StageStatus.WAITING).first()
        if stage is None:
            raise NotFound(f"Deployment #{id} is not waiting at an approval gate.")
        return stage

    def do_approve(self, id, user, comment, **_):
        runs.decide_gate(self._gate(_run(id).pk), get_user(user), True, comment)
        return runs.describe_run(_run(id))

    def do_reject(self, id, user, comment, **_):
        runs.decide_gate(self._gate(_run(id).pk), get_user(user), False, comment)
        return runs.describe_run(_run(id))

    text_approve = text_reject = text_run
