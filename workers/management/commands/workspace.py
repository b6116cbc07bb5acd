import json

from portal import workspaces
from portal.access import get_user
from portal.cli import PortalCommand, arg, args
from portal.spec import load_spec
from workers import refresh, tasks


class Command(PortalCommand):
    help = "Create, inspect, export, import and refresh workspaces."
    verbs = {
        "create": (
            "Create a workspace.",
            args(
                arg("slug"),
                arg("--name"),
                arg("--region", default="us-east-1"),
                arg("--approvals-required", type=int, default=1, dest="approvals_required"),
                arg(
                    "--apply-concurrency",
                    type=int,
                    dest="apply_concurrency",
                    help="most actions of an apply in flight at once (default: PORTAL_APPLY_CONCURRENCY)",
                ),
            ),
        ),
        "add-member": (
            "Give a user a role in a workspace.",
            args(arg("slug"), arg("username"), arg("role", help="viewer, editor, approver or admin")),
        ),
        "show": ("Show a workspace, its members and components.", arg("slug")),
        "export": ("Print the workspace's HEAD as a spec that re-imports to the same model.", arg("slug")),
        "import": (
            "Load a spec into HEAD through a change set merged at once.",
            args(arg("slug"), arg("--spec", required=True), arg("--user", required=True)),
        ),
        "refresh": (
            "Read every resource of HEAD from AWS and mark drift per path (queued for the workers).",
            args(
                arg("slug"),
                arg("--wait", action="store_true", help="refresh here and now, and print what drifted"),
            ),
        ),
    }

    def do_create(self, slug, name, region, approvals_required, apply_concurrency=None, **_):
        ws = workspaces.create_workspace(
            slug, name, region, approvals_required, apply_concurrency=apply_concurrency
        )
        return workspaces.describe(ws)

    def text_create(self, r):
        return (
            f"Created workspace {r['slug']} ({r['region']}, {r['approvals_required']} approval(s) required)."
        )

    def do_add_member(self, slug, username, role, **_):
        ws = workspaces.get_workspace(slug)
        member = workspaces.add_member(ws, get_user(username), role)
        return {"workspace": slug, "user": username, "role": member.role}

    def text_add_member(self, r):
        return f"{r['user']} is now {r['role']} in {r['workspace']}."

    def do_show(self, slug, **_):
        return workspaces.describe(workspaces.get_workspace(slug))

    def text_show(self, r):
        lines = [
            f"{r['name']} ({r['slug']}) region {r['region']}, HEAD v{r['head_version']}, "
            f"{r['approvals_required']} approval(s) required",
            "members: " + (", ".join(f"{m['user']} ({m['role']})" for m in r["members"]) or "none"),
            f"components ({len(r['components'])}):",
        ]
        lines += [f"  {c['name']:50} {c['schema']:45} {c['resource_status']}" for c in r["components"]]
        lines.append(
            "open change sets: "
            + (", ".join(f"#{c['id']} {c['name']} ({c['status']})" for c in r["open_change_sets"]) or "none")
        )
        return "\n".join(lines)

    def do_export(self, slug, **_):
        return workspaces.export_spec(workspaces.get_workspace(slug))

    def text_export(self, r):
        return json.dumps(r, indent=2)

    def do_import(self, slug, spec, user, **_):
        ws = workspaces.get_workspace(slug)
        cs = workspaces.import_spec(ws, get_user(user), load_spec(spec))
        ws.refresh_from_db()
        return {
            "workspace": slug,
            "change_set": cs.pk,
            "head_version": ws.head_version,
            "components": ws.components.count(),
        }

    def text_import(self, r):
        return f"Imported into {r['workspace']} through change set #{r['change_set']}: HEAD v{r['head_version']}, {r['components']} components."

    def do_refresh(self, slug, wait, **_):
        ws = workspaces.get_workspace(slug)
        if wait:
            return {"workspace": slug, **refresh.refresh_workspace(ws.pk)}
        tasks.refresh_workspace.delay(ws.pk)
        return {"workspace": slug, "queued": True}

    def text_refresh(self, r):
        if r.get("queued"):
            return f"Refresh of {r['workspace']} queued for the workers."
        drifted = ", ".join(r["drifted"]) or "none"
        return f"Refreshed {r['read']} resources of {r['workspace']}; drifted: {drifted}."
