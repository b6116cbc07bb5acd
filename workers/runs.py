"""Reading apply runs for people and scripts: a JSON-able summary and waiting for the end."""

from . import jobs
from .models import ApplyRun


def describe_run(run):
    run = ApplyRun.objects.select_related("change_set", "workspace").get(pk=run.pk)
    return {
        "run": run.pk,
        "workspace": run.workspace.slug,
        "change_set": run.change_set_id,
        "kind": run.kind,
        "status": run.status,
        "runs_ahead": run.runs_ahead(),
        "error": run.error,
        "actions": [
            {
                "key": a.key,
                "status": a.status,
                "attempts": a.attempts,
                "error": a.error,
                "reason": a.reason,
                "duration_s": a.duration_s,
                "result": a.result,
            }
            for a in run.actions.all()
        ],
    }


def run_text(r):
    head = f"Apply #{r['run']} of change set #{r['change_set']} in {r['workspace']}: {r['status']}"
    if r["runs_ahead"]:
        head += f" ({r['runs_ahead']} apply(s) ahead in the queue)"
    lines = [head]
    for a in r["actions"]:
        line = f"  {a['status']:9} {a['key']}"
        if a["error"]:
            line += f" — {a['error']}"
        lines.append(line)
    return "\n".join(lines)


def wait_for_run(run, timeout=3600, poll=0.5, progress=None):
    """Wait for the apply to finish; `progress(line)` hears each action's status changes."""
    seen = {}

    def report(run):
        for key, status in run.actions.values_list("key", "status"):
            if seen.get(key) != status:
                seen[key] = status
                progress(f"{status:9} {key}")

    return jobs.wait(ApplyRun, run.pk, "Apply", timeout, poll, report if progress else None)
