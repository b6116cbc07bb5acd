"""How long one edit takes to propagate to the 100 components that depend on it, in a
workspace of 1,000 and of 10,000 components. The edit should cost about the same in
both: propagation follows the subscription index, it does not scan the workspace.

Last line: {"components": [1000, 10000], "affected": 100, "edit_ms": [A, B], "ratio": B/A, ...}
"""

import json
import statistics

from _setup import Timer, build_workspace, setup_django

setup_django()

from portal import graph  # noqa: E402
from portal.models import Component  # noqa: E402

SIZES = [1000, 10000]
REPEAT = 7


def edit_once(ws, i):
    root = Component.objects.get(workspace=ws, name="t0-root")
    with Timer() as t:
        root.properties = {"GroupDescription": f"edit {i}"}
        root.save(update_fields=["properties"])
        changed = graph.propagate(ws, {"t0-root"})
    return t.ms, len(changed) - 1  # minus the root itself


results = {"components": SIZES, "affected": None, "edit_ms": [], "edit_ms_min": [], "build_s": []}
for n in SIZES:
    with Timer() as build:
        ws, _ = build_workspace(f"prop-{n}", n)
    timings = []
    for i in range(REPEAT):
        ms, affected = edit_once(ws, i)
        timings.append(ms)
    last = Component.objects.get(workspace=ws, name="t0-f9-c9")
    assert last.domain["GroupDescription"] == f"edit {REPEAT - 1}", last.domain
    results["affected"] = affected
    results["edit_ms"].append(round(statistics.median(timings), 2))
    results["edit_ms_min"].append(round(min(timings), 2))
    results["build_s"].append(round(build.ms / 1000, 1))
    print(
        f"{n:>6} components: edit affecting {affected} -> median {statistics.median(timings):.1f} ms "
        f"(min {min(timings):.1f}) over {REPEAT} edits; workspace built in {build.ms / 1000:.1f} s"
    )

results["ratio"] = round(results["edit_ms"][1] / results["edit_ms"][0], 2)
print(json.dumps(results))
