"""Diff and plan of a change set touching 500 components in a 10,000-component workspace.

Last line: {"components": 10000, "touched": 500, "diff_ms": ..., "plan_ms": ..., "total_ms": ..., "actions": ..., "peak_mb": ...}
"""

import json
import resource
import tracemalloc
from copy import deepcopy

from _setup import Timer, build_workspace, setup_django

setup_django()

from portal import changesets, graph, registry  # noqa: E402
from portal.models import ChangeSetEntry, Component  # noqa: E402
from portal.plan import plan_actions  # noqa: E402
from portal.schemas import get_schema  # noqa: E402

get_schema("AWS::EC2::SecurityGroup")  # a running server has its schemas loaded
registry.can_apply("AWS::EC2::SecurityGroup")  # and its providers imported

N, TOUCHED = 10000, 500

ws, user = build_workspace("plan-bench", N)
cs = changesets.create_change_set(ws, user, "touch 500")
components = list(Component.objects.filter(workspace=ws).order_by("name"))
leaves = [c for c in components if c.name.endswith("-c9")]
others = [c for c in components if not c.name.endswith("-c9")]
entries = []
for c in others[: TOUCHED - 50]:  # 450 in-place edits
    props = deepcopy(c.properties)
    props["Tags"] = [{"Key": "team", "Value": "chips"}]
    entries.append(
        ChangeSetEntry(
            change_set=cs,
            component_id=c.id,
            op="edit",
            name=c.name,
            schema=c.schema,
            properties=props,
            base_name=c.name,
            base_properties=c.properties,
            base_version=c.version,
        )
    )
for c in leaves[:25]:  # 25 deletes of components nothing subscribes to
    entries.append(
        ChangeSetEntry(
            change_set=cs,
            component_id=c.id,
            op="delete",
            name=c.name,
            schema=c.schema,
            properties=c.properties,
            base_name=c.name,
            base_properties=c.properties,
        )
    )
for i in range(25):  # 25 new components subscribing to existing ones
    entries.append(
        ChangeSetEntry(
            change_set=cs,
            op="add",
            name=f"new-{i}",
            schema="AWS::EC2::SecurityGroup",
            properties={
                "GroupDescription": {
                    "$source": {"component": others[i].name, "path": "/domain/GroupDescription"}
                }
            },
        )
    )
ChangeSetEntry.objects.bulk_create(entries)
graph.reindex(ws, {e.name: (None if e.op == "delete" else e.properties) for e in entries}, change_set=cs)

tracemalloc.start()
with Timer() as d:
    diff = changesets.diff(cs)
with Timer() as p:
    plan = plan_actions(cs)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()

kinds = {}
for a in plan.actions:
    kinds[a.kind] = kinds.get(a.kind, 0) + 1
print(
    f"diff of {len(diff)} components: {d.ms:.0f} ms; plan of {len(plan.actions)} actions {kinds}: {p.ms:.0f} ms; "
    f"peak traced memory {peak / 2**20:.1f} MiB; max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
)
assert len(diff) == TOUCHED and plan.ok, plan.errors[:3]
print(
    json.dumps(
        {
            "components": N,
            "touched": TOUCHED,
            "diff_ms": round(d.ms, 1),
            "plan_ms": round(p.ms, 1),
            "total_ms": round(d.ms + p.ms, 1),
            "actions": len(plan.actions),
            "peak_mb": round(peak / 2**20, 1),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    )
)
