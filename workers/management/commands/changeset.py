import json

from django.db import transaction

from portal import approvals, changesets, workspaces
from portal.access import change_set_for, get_user
from portal.cli import PortalCommand, arg, args, object_id
from portal.errors import NotFound
from portal.models import ChangeSet, Role
from portal.plan import plan_actions
from portal.spec import load_spec
from workers.apply import request_apply
from workers.runs import describe_run, run_text, wait_for_run


def _change_set(change_set_id):
    cs = ChangeSet.objects.select_related("workspace", "author").filter(pk=change_set_id).first()
    if cs is None:
        raise NotFound(f"No change set {change_set_id}.")
    return cs


def summary(cs):
    return {
        "id": cs.pk,
        "name": cs.name,
        "workspace": cs.workspace.slug,
        "author": cs.author.username,
        "status": cs.status,
        "base_version": cs.base_version,
        "head_version": cs.workspace.head_version,
        "revision": cs.revision,
        "problem": cs.problem,
        "solution": cs.solution,
        "components": [
            {"name": e.name, "op": e.op, "schema": e.schema, "replace": e.replace} for e in cs.entries.all()
        ],
    }


CHECKSUM = arg(
    "--checksum",
    help="the checksum `changeset show` or `changeset diff` printed: refused if the change set "
    "or its plan changed since",
)


class Command(PortalCommand):
    help = "Create, update, inspect, decide, apply and abandon change sets."
    verbs = {
        "create": (
            "Create a change set from HEAD, optionally filled from a spec file.",
            args(
                arg("--workspace", required=True),
                arg("--name", required=True),
                arg("--user", required=True),
                arg("--spec", help="JSON or YAML spec to upsert into the change set"),
            ),
        ),
        "update": (
            "Upsert a spec file's components into an existing change set, all or nothing.",
            args(
                arg("id", type=object_id),
                arg("--spec", required=True, help="JSON or YAML spec to upsert into the change set"),
                arg("--user", required=True),
            ),
        ),
        "show": ("Show a change set and the checksum an approver approves.", arg("id", type=object_id)),
        "diff": (
            "Show a change set's diff against HEAD, its plan and its conflicts.",
            arg("id", type=object_id),
        ),
        "abandon": ("Abandon a change set.", args(arg("id", type=object_id), arg("--user", required=True))),
        "request-approval": (
            "Ask approvers to review a change set.",
            args(arg("id", type=object_id), arg("--user", required=True)),
        ),
        "approve": (
            "Approve a change set (not your own).",
            args(
                arg("id", type=object_id),
                arg("--user", required=True),
                arg("--comment", default=""),
                CHECKSUM,
            ),
        ),
        "reject": (
            "Reject a change set, saying why.",
            args(
                arg("id", type=object_id),
                arg("--user", required=True),
                arg("--comment", required=True),
                CHECKSUM,
            ),
        ),
        "apply": (
            "Apply a change set to AWS with the Celery workers.",
            args(
                arg("id", type=object_id),
                arg("--user", required=True),
                arg(
                    "--wait",
                    action="store_true",
                    help="block until the apply ends; exit non-zero if any action failed",
                ),
                arg("--timeout", type=float, default=3600),
            ),
        ),
    }

    def do_create(self, workspace, name, user, spec, **_):
        ws = workspaces.get_workspace(workspace)
        author = get_user(user)
        parsed = load_spec(spec) if spec else None
        with transaction.atomic():
            problem = (parsed.change_set or {}).get("problem", "") if parsed else ""
            solution = (parsed.change_set or {}).get("solution", "") if parsed else ""
            cs = changesets.create_change_set(
                ws, author, name, problem=problem or "", solution=solution or ""
            )
            if parsed:
                changesets.apply_spec(cs, author, parsed)
        return {**summary(_change_set(cs.pk)), "warnings": changesets.spec_warnings(parsed) if parsed else []}

    def text_create(self, r):
        created = f"Created change set #{r['id']} {r['name']} in {r['workspace']} with {len(r['components'])} component change(s)."
        return "\n".join([created, *(f"warning: {w}" for w in r["warnings"])])

    def do_update(self, id, spec, user, **_):
        actor = get_user(user)
        cs = change_set_for(actor, id, Role.EDITOR)
        changesets.apply_spec(cs, actor, load_spec(spec))
        return summary(_change_set(id))

    def text_update(self, r):
        return f"Updated change set #{r['id']} {r['name']} in {r['workspace']}: {len(r['components'])} component change(s)."

    def do_show(self, id, **_):
        cs = _change_set(id)
        return {**summary(cs), "checksum": approvals.checksum(cs)}

    def text_show(self, r):
        lines = [
            f"#{r['id']} {r['name']} [{r['status']}] by {r['author']} in {r['workspace']} "
            f"(base v{r['base_version']}, HEAD v{r['head_version']})"
        ]
        if r["problem"]:
            lines.append(f"problem: {r['problem']}")
        if r["solution"]:
            lines.append(f"solution: {r['solution']}")
        lines += [
            f"  {c['op']:7} {c['name']} ({c['schema']}){' [replace]' if c['replace'] else ''}"
            for c in r["components"]
        ]
        lines.append(f"checksum: {r['checksum']}")
        return "\n".join(lines)

    def do_diff(self, id, **_):
        cs = _change_set(id)
        conflicts = changesets.rebase(cs) if changesets.is_behind(cs) else changesets.open_conflicts(cs)
        cs = _change_set(id)
        plan = plan_actions(cs)
        return {
            "id": cs.pk,
            "diff": [d.as_dict() for d in changesets.diff(cs)],
            "plan": plan.as_dict(),
            "conflicts": conflicts,
            "checksum": approvals.checksum(cs, plan),
        }

    def text_diff(self, r):
        lines = []
        for d in r["diff"]:
            lines.append(f"{d['op']:9} {d['name']} ({d['schema']})")
            for c in d["changes"]:
                old = json.dumps(c["old"], ensure_ascii=False) if c["op"] != "added" else ""
                new = json.dumps(c["new"], ensure_ascii=False) if c["op"] != "deleted" else ""
                lines.append(f"    {c['op']:8} {c['path'] or '/'}  {old}{' -> ' if old and new else ''}{new}")
        lines.append("plan:")
        for a in r["plan"]["actions"]:
            wait = f" (after {', '.join(a['waits_for'])})" if a["waits_for"] else ""
            lines.append(f"  {a['kind']:8} {a['component']}: {a['reason']}{wait}")
        for e in r["plan"]["errors"]:
            lines.append(f"  BLOCKED  {e['component']}: {e['message']}")
        for w in r["plan"]["warnings"]:
            lines.append(f"  WARNING  {w['component']}: {w['message']}")
        for c in r["conflicts"]:
            lines.append(
                f"conflict {c['component']}{c['path']}: HEAD {json.dumps(c['head'])} / mine {json.dumps(c['mine'])}"
            )
        lines.append(f"checksum: {r['checksum']}")
        return "\n".join(lines)

    def do_abandon(self, id, user, **_):
        cs = changesets.abandon(_change_set(id), get_user(user))
        return summary(cs)

    def text_abandon(self, r):
        return f"Abandoned change set #{r['id']} {r['name']}."

    def do_request_approval(self, id, user, **_):
        return summary(approvals.request_approval(_change_set(id), get_user(user)))

    def text_request_approval(self, r):
        return f"Change set #{r['id']} {r['name']} now needs approval."

    def do_approve(self, id, user, comment, checksum, **_):
        return summary(approvals.approve(_change_set(id), get_user(user), comment, checksum))

    def text_approve(self, r):
        return f"Change set #{r['id']} {r['name']} is {r['status']}."

    def do_reject(self, id, user, comment, checksum, **_):
        return summary(approvals.reject(_change_set(id), get_user(user), comment, checksum))

    text_reject = text_approve

    def do_apply(self, id, user, wait, timeout, **_):
        run = request_apply(_change_set(id), get_user(user))
        if not wait:
            return describe_run(run)
        run = wait_for_run(run, timeout, progress=lambda line: self.stderr.write(line))
        result = describe_run(run)
        return result, 0 if run.status == "succeeded" else 1

    def text_apply(self, r):
        return run_text(r)
