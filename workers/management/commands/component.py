from portal.access import change_set_for, get_user
from portal.cli import PortalCommand, arg, args, object_id
from portal.errors import NotFound
from portal.models import Role
from portal.workspaces import get_workspace
from workers.importer import import_resource


class Command(PortalCommand):
    help = "Work with components: import an existing AWS resource into a change set."
    verbs = {
        "import": (
            "Adopt an existing AWS resource into a change set.",
            args(
                arg("--workspace", required=True),
                arg("--change-set", required=True, type=object_id, dest="change_set"),
                arg("--type", required=True, dest="type_name"),
                arg("--id", required=True, dest="physical_id"),
                arg("--name", help="component name (default: from the physical id)"),
                arg("--user", required=True),
            ),
        ),
    }

    def do_import(self, workspace, change_set, type_name, physical_id, name, user, **_):
        ws = get_workspace(workspace)
        actor = get_user(user)
        cs = change_set_for(actor, change_set, Role.EDITOR)
        if cs.workspace_id != ws.pk:
            raise NotFound(f"No change set {change_set} in workspace {workspace}.")
        entry = import_resource(cs, actor, type_name, physical_id, name)
        return {
            "change_set": cs.pk,
            "component": entry.name,
            "schema": entry.schema,
            "adopts": entry.adopt_id,
            "properties": entry.properties,
        }

    def text_import(self, r):
        return f"Change set #{r['change_set']} now imports {r['adopts']} as {r['component']} ({r['schema']})."
