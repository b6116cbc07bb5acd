"""`workspace import` of a spec of 1,000 and of 10,000 components (security groups in
trees: a root feeds chains through /domain/GroupDescription, fan-outs read the root's tags),
into an empty workspace, through the change set that is merged at once.

Last line: {"components": [1000, 10000], "import_s": [A, B], "ratio": B/A}
"""

import json

from _setup import Timer, setup_django, src

setup_django()

from django.contrib.auth import get_user_model  # noqa: E402

from portal import workspaces  # noqa: E402
from portal.models import Component  # noqa: E402
from portal.schemas import get_schema  # noqa: E402
from portal.spec import parse_spec  # noqa: E402

get_schema("AWS::EC2::SecurityGroup")  # a running server has its schemas loaded

SIZES = [1000, 10000]
FAN, CHAIN = 10, 5


def spec_of(n):
    components, t = [], 0
    while len(components) < n:
        root = f"t{t}-root"
        components.append(
            {
                "name": root,
                "schema": "AWS::EC2::SecurityGroup",
                "properties": {"GroupDescription": f"tree {t}", "Tags": [{"Key": "team", "Value": "chips"}]},
            }
        )
        for f in range(FAN):
            for c in range(CHAIN):
                producer = root if c == 0 else f"t{t}-f{f}-c{c - 1}"
                components.append(
                    {
                        "name": f"t{t}-f{f}-c{c}",
                        "schema": "AWS::EC2::SecurityGroup",
                        "properties": {
                            "GroupDescription": src(producer, "/domain/GroupDescription"),
                            "Tags": [{"Key": "team", "Value": src(root, "/domain/Tags/team/Value")}],
                        },
                    }
                )
        t += 1
    return parse_spec({"components": components[:n]})


user = get_user_model().objects.create_user("bench")
results = {"components": SIZES, "import_s": []}
for n in SIZES:
    ws = workspaces.create_workspace(f"import-{len(results['import_s'])}-{n}", approvals_required=0)
    workspaces.add_member(ws, user, "admin")
    spec = spec_of(n)
    with Timer() as t:
        workspaces.import_spec(ws, user, spec)
    last = Component.objects.get(workspace=ws, name=f"t0-f{FAN - 1}-c{CHAIN - 1}")
    assert last.domain["GroupDescription"] == "tree 0" and not last.pending, last.domain
    assert Component.objects.filter(workspace=ws).count() == n
    results["import_s"].append(round(t.ms / 1000, 2))
    print(f"{n:>6} components imported in {t.ms / 1000:.2f} s ({t.ms / n:.2f} ms a component)")

results["ratio"] = round(results["import_s"][1] / results["import_s"][0], 2)
print(json.dumps(results))
