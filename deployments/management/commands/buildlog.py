"""manage.py buildlog: list, show (Markdown or JSON) and write build logs."""

import json

from deployments import buildlogs, markdown
from deployments.filters import BuildLogFilter
from deployments.models import BuildLog
from portal import workspaces
from portal.access import get_user
from portal.cli import PortalCommand, arg, args, object_id
from portal.errors import NotFound


def _log(log_id):
    log = BuildLog.objects.select_related("workspace", "author").filter(pk=log_id).first()
    if log is None:
        raise NotFound(f"No build log {log_id}.")
    return log


class Command(PortalCommand):
    help = "List, show and write build logs (what was applied and deployed, like the seed's)."
    verbs = {
        "list": (
            "List the build logs of a workspace, newest first.",
            args(
                arg("--workspace", required=True),
                arg("--status", default=""),
                arg("--component", default=""),
                arg("--author", default=""),
                arg("--search", default="", help="words that must all appear"),
            ),
        ),
        "show": (
            "Print a build log.",
            args(arg("id", type=object_id), arg("--format", choices=["md", "json"], default="md")),
        ),
        "create": (
            "Write the build log of a group of change sets (with the deployments since).",
            args(
                arg("--workspace", required=True),
                arg("--change-sets", required=True, help="ids, comma separated: 1,2,3"),
                arg("--user", required=True),
                arg("--title", default=""),
            ),
        ),
    }

    def do_list(self, workspace, status, component, author, search, **_):
        ws = workspaces.get_workspace(workspace)
        found = BuildLogFilter(
            {"status": status, "component": component, "author": author, "q": search},
            BuildLog.objects.filter(workspace=ws).select_related("workspace", "author"),
        ).qs
        return [buildlogs.summary(log) for log in found[:200]]

    def text_list(self, rows):
        if not rows:
            return "No build logs."
        return "\n".join(
            f"#{r['id']:<5} {r['date']:%Y-%m-%d %H:%M}  {r['status']:9} {r['kind']:10} {r['title']}"
            for r in rows
        )

    def do_show(self, id, format, **_):
        log = _log(id)
        if format == "json":
            return buildlogs.as_json(log)
        return {"markdown": markdown.render(log)}

    def text_show(self, r):
        return r["markdown"] if "markdown" in r else json.dumps(r, indent=2, default=str)

    def do_create(self, workspace, change_sets, user, title, **_):
        ws = workspaces.get_workspace(workspace)
        log = buildlogs.create_group(ws, buildlogs.parse_ids(change_sets), get_user(user), title)
        return buildlogs.summary(log)

    def text_create(self, r):
        return f"Wrote build log #{r['id']} {r['title']} ({r['status']}): {', '.join(r['change_sets'])}."
