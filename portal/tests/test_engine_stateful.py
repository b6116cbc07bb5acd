"""Random sequences of edits, rebases, merges and observations over several change sets
on one HEAD, checked after every step against a recomputation from scratch.

HYPOTHESIS_PROFILE=local runs many more examples than CI does.
"""

import itertools
import os
from copy import deepcopy

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from portal import changesets, graph, jsondiff, pointers
from portal.errors import ConflictError, NotFound, ValidationError
from portal.models import ChangeSet, Component, EntryOp, Membership, Role, Workspace
from portal.plan import plan_actions
from portal.schemas import validate_properties
from portal.string_template import placeholders, render

settings.register_profile(
    "ci",
    max_examples=40,
    stateful_step_count=10,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "local",
    max_examples=1000,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SG = "AWS::EC2::SecurityGroup"
TEMPLATE = "Portal::StringTemplate"
GROUPS = ["a", "b", "c", "d"]
NAMES = [*GROUPS, "t"]  # t is a string template, the others security groups
PATHS = [
    "/domain/GroupDescription",
    "/domain/Tags/k0/Value",
    "/domain/Tags/1/Value",
    "/resource_value/GroupId",
]
PATHS_INTO_TEMPLATE = ["/domain/Rendered/Value", "/si/name"]


def src(component, path):
    return {"$source": {"component": component, "path": path}}


values = st.one_of(
    st.sampled_from(["x", "y", "z"]),
    st.builds(src, st.sampled_from(GROUPS), st.sampled_from(PATHS)),
    st.builds(src, st.just("t"), st.sampled_from(PATHS_INTO_TEMPLATE)),
)


@st.composite
def properties_for(draw, name):
    if name == "t":
        return {"Template": "{{ X }}-t", "Variables": {"X": draw(values)}}
    tags = [{"Key": f"k{i}", "Value": draw(values)} for i in range(draw(st.integers(1, 2)))]
    return {"GroupDescription": draw(values), "Tags": tags}


def schema_of(name):
    return TEMPLATE if name == "t" else SG


# --- The oracle: every component resolved from scratch, plainly ----------------------------


def _walk_sources(node, at=""):
    if isinstance(node, dict) and len(node) == 1 and "$source" in node:
        yield at, node["$source"]
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _walk_sources(value, pointers.child(at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk_sources(value, pointers.child(at, index))


def resolve_from_scratch(components):
    """{name: (domain, sorted pending)} for {name: (schema, id, properties, resource_value)}."""
    done, busy = {}, set()

    def value_of(producer, path):
        root, _, rest = path[1:].partition("/")
        sub = "/" + rest if rest else ""
        if producer not in components:
            return None, False
        schema, cid, _, resource_value = components[producer]
        if root == "si":
            doc = {"name": producer, "type": schema, "schema": schema, "id": cid}
        elif root == "resource_value":
            doc = resource_value
        else:
            if producer in busy:
                return None, False
            domain, pending = resolve(producer)
            if any(pointers.is_prefix(p, sub) or pointers.is_prefix(sub, p) for p in pending):
                return None, False
            doc = domain
        if doc is None:
            return None, False
        try:
            return deepcopy(pointers.resolve(doc, sub)), True
        except pointers.Missing:
            return None, False

    def resolve(name):
        if name not in done:
            busy.add(name)
            schema, _, props, _ = components[name]
            domain, pending = deepcopy(props), []
            for target, spec in _walk_sources(props):
                value, known = value_of(spec["component"], spec["path"])
                if not known:
                    pending.append(target)
                pointers.set_value(domain, pointers.split(target), value)
            if schema == TEMPLATE:
                waiting = [n for n in placeholders(domain["Template"]) if f"/Variables/{n}" in pending]
                if waiting:
                    pending.append("/Rendered")
                    domain["Rendered"] = {"Value": None}
                else:
                    domain["Rendered"] = {"Value": render(domain["Template"], domain["Variables"])}
            busy.discard(name)
            done[name] = (domain, sorted(pending))
        return done[name]

    return {name: resolve(name) for name in components}


def head_components(ws):
    return {
        c.name: (c.schema, str(c.id), c.properties, c.resource_value)
        for c in Component.objects.filter(workspace=ws)
    }


def as_merged(ws, cs):
    """HEAD with the change set's rows laid over it."""
    comps = head_components(ws)
    for e in cs.entries.all():
        if e.op == EntryOp.DELETE:
            comps.pop(e.name, None)
        else:
            kept = comps.get(e.name) if e.op == EntryOp.EDIT else None
            comps[e.name] = (e.schema, str(e.component_id), e.properties, kept[3] if kept else None)
    return comps


def reads(components):
    """{consumer: {(producer, root, target)}} for the sources of `components`."""
    return {
        n: {(s["component"], s["path"].split("/")[1], t) for t, s in _walk_sources(props)}
        for n, (_, _, props, _) in components.items()
    }


def has_cycle(components):
    edges = {
        n: {p for p, root, _ in r if root == "domain" or (root == "resource_value" and p != n)}
        for n, r in reads(components).items()
    }

    def reaches(start, goal, seen):
        return any(
            p == goal or (p not in seen and not seen.add(p) and reaches(p, goal, seen))
            for p in edges.get(start, ())
        )

    return any(reaches(n, n, set()) for n in edges)


def expected_plan(head, merged, entries):
    """The components whose resolved desired value or identity differs after the merge."""
    before, after = resolve_from_scratch(head), resolve_from_scratch(merged)
    expected = {n for n in head.keys() ^ merged.keys()}
    expected |= {
        n for n in head.keys() & merged.keys() if before[n] != after[n] or head[n][2] != merged[n][2]
    }
    replaced = {
        n
        for n in head.keys() & merged.keys()
        if n != "t" and before[n][0]["GroupDescription"] != after[n][0]["GroupDescription"]
    }
    merged_reads = reads(merged)
    frontier = set(replaced)
    while frontier:
        nxt = set()
        for consumer, sources in merged_reads.items():
            for producer, root, target in sources:
                if (
                    producer in frontier
                    and root == "resource_value"
                    and consumer != producer
                    and consumer in head
                ):
                    expected.add(consumer)
                    if target == "/GroupDescription" and consumer not in replaced and consumer != "t":
                        replaced.add(consumer)
                        nxt.add(consumer)
        frontier = nxt
    return expected - {e.name for e in entries if e.op == EntryOp.ADD and e.name in head}


# --- The machine ---------------------------------------------------------------------------


class Engine(RuleBasedStateMachine):
    change_sets = Bundle("change_sets")
    counter = itertools.count()

    def __init__(self):
        super().__init__()
        n = next(self.counter)
        self.ws = Workspace.objects.create(name=f"prop {n}", slug=f"prop-{n}", approvals_required=0)
        self.user = USER["bob"]
        Membership.objects.create(workspace=self.ws, user=self.user, role=Role.EDITOR)
        self.open = []

    def snapshot(self):
        return sorted(
            (c.name, c.schema, repr(c.properties), repr(c.domain), repr(c.pending), c.version)
            for c in Component.objects.filter(workspace=self.ws)
        )

    def entries_of(self, cs):
        return sorted((e.name, e.op, repr(e.properties), repr(e.conflicts)) for e in cs.entries.all())

    @initialize(target=change_sets)
    def first_change_set(self):
        return self._new()

    @rule(target=change_sets)
    def new_change_set(self):
        return self._new()

    def _new(self):
        cs = changesets.create_change_set(self.ws, self.user, f"cs {len(self.open)}")
        self.open.append(cs.pk)
        return cs.pk

    def _edit(self, pk, action):
        cs = ChangeSet.objects.get(pk=pk)
        before = self.entries_of(cs)
        try:
            action(cs)
        except (ValidationError, NotFound, ConflictError):
            assert self.entries_of(cs) == before, "a refused edit changed the change set"

    @rule(pk=change_sets, name=st.sampled_from(NAMES), data=st.data())
    def upsert(self, pk, name, data):
        props = data.draw(properties_for(name))
        self._edit(pk, lambda cs: changesets.upsert_component(cs, self.user, name, schema_of(name), props))

    @rule(
        pk=change_sets,
        name=st.sampled_from(GROUPS),
        path=st.sampled_from(["/GroupDescription", "/Tags/0/Value"]),
        value=values,
    )
    def set_property(self, pk, name, path, value):
        self._edit(pk, lambda cs: changesets.set_property(cs, self.user, name, path, value))

    @rule(pk=change_sets, name=st.sampled_from(NAMES))
    def delete(self, pk, name):
        self._edit(pk, lambda cs: changesets.delete_component(cs, self.user, name))

    @rule(pk=change_sets, name=st.sampled_from(NAMES))
    def revert(self, pk, name):
        self._edit(pk, lambda cs: changesets.revert_component(cs, self.user, name))

    @rule(pk=change_sets)
    def rebase(self, pk):
        cs = ChangeSet.objects.get(pk=pk)
        if cs.merged_version is not None:
            return
        heads = {c.id: c.properties for c in Component.objects.filter(workspace=self.ws)}
        before = {e.name: (e.op, e.base_properties, e.properties, e.component_id) for e in cs.entries.all()}
        changesets.rebase(cs, self.user)
        after = {e.name: e for e in cs.entries.all()}
        for name, (op, base, mine, cid) in before.items():
            entry, head = after.get(name), heads.get(cid)
            if (
                op != EntryOp.EDIT
                or entry is None
                or head is None
                or entry.conflicts
                and entry.conflicts[0]["path"] == "/"
            ):
                continue
            conflicted = [c["path"] for c in entry.conflicts]
            for side, doc in (("mine", mine), ("head", head)):
                for change in jsondiff.changes(base or {}, doc):
                    if any(
                        pointers.is_prefix(p, change.path) or pointers.is_prefix(change.path, p)
                        for p in conflicted
                    ):
                        continue
                    assert jsondiff.value_at(entry.properties, change.path) == jsondiff.value_at(
                        doc, change.path
                    ), f"the rebase dropped {side}'s edit at {name}{change.path}"

    @rule(pk=change_sets, take=st.sampled_from(["head", "mine"]), index=st.integers(0, 3))
    def resolve(self, pk, take, index):
        conflicts = changesets.open_conflicts(ChangeSet.objects.get(pk=pk))
        if conflicts:
            c = conflicts[index % len(conflicts)]
            self._edit(
                pk, lambda cs: changesets.resolve_conflict(cs, self.user, c["component"], c["path"], take)
            )

    @rule(pk=change_sets)
    def merge(self, pk):
        cs = ChangeSet.objects.get(pk=pk)
        before = self.snapshot()
        try:
            changesets.merge(cs, self.user)
        except (ValidationError, ConflictError):
            assert self.snapshot() == before, "a refused merge changed HEAD"
            return
        cs.refresh_from_db()
        assert not changesets.open_conflicts(cs), "merged with unresolved conflicts"
        self.open.remove(pk)

    @rule(name=st.sampled_from(GROUPS), group=st.sampled_from(["sg-1", "sg-2"]))
    def observe(self, name, group):
        component = Component.objects.filter(workspace=self.ws, name=name).first()
        if component is not None:
            component.resource_value = {"GroupId": group}
            component.save(update_fields=["resource_value"])
            graph.propagate(self.ws, {name}, roots=("resource_value",))

    @invariant()
    def head_is_resolved_as_from_scratch_and_valid(self):
        comps = head_components(self.ws)
        scratch = resolve_from_scratch(comps)
        for c in Component.objects.filter(workspace=self.ws):
            assert (c.domain, sorted(c.pending)) == scratch[c.name], f"HEAD {c.name} resolved wrongly"
            for target, spec in _walk_sources(c.properties):
                assert spec["component"] in comps, f"HEAD {c.name}{target} dangles"
            doc = deepcopy(c.properties)
            for target, _ in _walk_sources(c.properties):
                if target not in c.pending:
                    pointers.set_value(doc, pointers.split(target), pointers.resolve(c.domain, target))
            assert validate_properties(c.schema, doc) == [], f"HEAD {c.name} holds a value its schema refuses"
        assert not has_cycle(comps), "HEAD holds a cycle"

    @invariant()
    def every_change_set_reads_as_if_merged(self):
        for cs in ChangeSet.objects.filter(pk__in=self.open):
            merged = as_merged(self.ws, cs)
            scratch = resolve_from_scratch(merged)
            view = graph.GraphView(self.ws, cs)
            for name, expected in scratch.items():
                got = view.view(name)
                assert (got.domain, sorted(got.pending)) == expected, f"#{cs.pk} reads {name} wrongly"
            if cs.base_version != Workspace.objects.get(
                pk=self.ws.pk
            ).head_version or changesets.open_conflicts(cs):
                continue
            entries = list(cs.entries.all())
            if has_cycle(merged) or any(
                e.op == EntryOp.EDIT and e.name not in head_components(self.ws) for e in entries
            ):
                continue
            planned = {a.component for a in plan_actions(cs).actions}
            assert planned == expected_plan(head_components(self.ws), merged, entries), (
                f"#{cs.pk} plans wrongly"
            )


USER = {}


@pytest.mark.django_db
def test_the_engine_holds_its_invariants_under_random_operations(django_user_model):
    USER["bob"] = django_user_model.objects.create_user("bob")
    Engine.TestCase.settings = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    Engine.TestCase().runTest()
