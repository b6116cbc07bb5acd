"""Server time and SQL queries of the main pages in a 1,000-component workspace.

    python bench/pages.py [--components 1000] [--runs 7]

Builds the workspace in a throwaway database (bench/_setup.py), opens a change set that
edits, adds and deletes a component, then renders the workspace home, the change-set
detail page and the component list with Django's test Client (signed in with
force_login), a warm-up first, then the median of `--runs`. Target: under 300 ms each.
Last line: {"components": 1000, "workspace_home_ms": ..., "changeset_detail_ms": ...,
"component_list_ms": ..., "queries": {...}}
"""

import argparse
import json
import statistics
import time

from _setup import build_workspace, setup_django

TARGET_MS = 300


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    setup_django()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from portal import changesets
    from portal.models import Component

    ws, user = build_workspace("pages-bench", args.components)
    names = list(Component.objects.filter(workspace=ws).order_by("name").values_list("name", flat=True))
    leaves = [n for n in names if n.endswith("-c9")]
    cs = changesets.create_change_set(ws, user, "bench: edit, add, delete")
    changesets.set_property(cs, user, leaves[0], "/Tags", [{"Key": "team", "Value": "chips"}])
    changesets.upsert_component(
        cs, user, "bench-new-sg", "AWS::EC2::SecurityGroup", {"GroupDescription": "new"}
    )
    changesets.delete_component(cs, user, leaves[1])

    client = Client(HTTP_HOST="127.0.0.1")  # an allowed host of the default settings
    client.force_login(user)
    pages = {
        "workspace_home": f"/workspaces/{ws.slug}/",
        "changeset_detail": f"/workspaces/{ws.slug}/changesets/{cs.pk}/",
        "component_list": f"/workspaces/{ws.slug}/components/",
    }
    timings, queries = {}, {}
    for key, url in pages.items():
        assert client.get(url).status_code == 200, url  # warm-up: imports, schema caches, templates
        runs = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                runs.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, url
        timings[key] = round(statistics.median(runs), 1)
        queries[key] = len(captured.captured_queries)

    print(
        f"workspace: {args.components} components (SQL: {connection.vendor}); change set #{cs.pk} edits, adds and deletes one"
    )
    for key, url in pages.items():
        verdict = "ok" if timings[key] < TARGET_MS else "OVER TARGET"
        print(
            f"{key:<18} {timings[key]:>7} ms  {queries[key]:>3} queries  {url}  ({verdict}, target < {TARGET_MS} ms)"
        )
    print(
        json.dumps(
            {
                "components": args.components,
                **{f"{key}_ms": value for key, value in timings.items()},
                "queries": queries,
            }
        )
    )


if __name__ == "__main__":
    main()
