"""Random sequences of edits, rebases, merges and observations over several change sets
on one HEAD, checked after every step against a recomputation from scratch.

CI runs the "ci" profile (a fixed seed); HYPOTHESIS_PROFILE=local runs many more and
longer sequences, with a random seed. `pytest -s` prints what the runs did (edits accepted
and refused, conflicts, merges, plans checked).
"""

import itertools
import json
import os
from collections import Counter
from copy import deepcopy

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from portal import changesets, graph, jsondiff, pointers, workspaces
from portal.errors import ConflictError, NotFound, ValidationError
from portal.models import (
    ChangeSet,
    ChangeSetEntry,
    Component,
    EntryOp,
    Membership,
    Role,
    Subscription,
    Workspace,
)
from portal.plan import plan_actions
from portal.schemas import validate_properties
from portal.spec import ComponentSpec, Spec
from portal.string_template import placeholders, render

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci",
    max_examples=250,
    stateful_step_count=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "local",
    max_examples=2000,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=_QUIET,
)

SG = "AWS::EC2::SecurityGroup"
TEMPLATE = "Portal::StringTemplate"
GROUPS = ["a", "b", "c", "d"]
NAMES = [*GROUPS, "t"]  # t is a string template, the others security groups
PATHS = [
    "/domain/GroupDescription",
    "/domain/Tags/k0/Value",  # a list item selected by its key
    "/domain/Tags/1/Value",
    "/domain/Tags/0",  # an object: a string property refuses it, a template variable takes it
    "/resource_value/GroupId",
]
PATHS_INTO_TEMPLATE = ["/domain/Rendered/Value", "/domain/Variables/X", "/si/name", "/si/id"]


STATS = Counter()  # what the runs did, printed at the end (pytest -s shows it)


def event(what):
    STATS[what] += 1


def src(component, path):
    return {"$source": {"component": component, "path": path}}


FRESH = "fresh"  # a literal made unique where it is written: two sides rarely agree by chance


def values_from(names, stray=True, seed=False):
    """Literals, and subscriptions to the components in `names` (those that exist where
    the value is written) and, now and then (`stray`), to any name. A `seed` value reads
    only strings that are there (any property of the seed takes it)."""
    groups, choices = [n for n in GROUPS if n in names], [st.sampled_from([FRESH, "x", "y"])]
    paths, into_template = PATHS, PATHS_INTO_TEMPLATE
    if seed:
        paths = ["/domain/GroupDescription", "/domain/Tags/k0/Value", "/resource_value/GroupId"]
        into_template, stray = ["/domain/Rendered/Value", "/si/name", "/si/id"], False
    if groups:
        choices.append(st.builds(src, st.sampled_from(groups), st.sampled_from(paths)))
    if "t" in names:
        choices.append(st.builds(src, st.just("t"), st.sampled_from(into_template)))
    if stray:
        anything = st.one_of(
            st.builds(src, st.sampled_from(GROUPS), st.sampled_from(PATHS)),
            st.builds(src, st.just("t"), st.sampled_from(PATHS_INTO_TEMPLATE)),
        )
        choices = [*choices * 3, anything]
    return st.one_of(*choices)


@st.composite
def properties_for(draw, name, names=NAMES, seed=False):
    value = values_from(names, seed=seed)
    if name == "t":
        return {"Template": "{{ X }}-t", "Variables": {"X": draw(value)}}
    tags = [{"Key": f"k{i}", "Value": draw(value)} for i in range(draw(st.integers(1, 2)))]
    return {"GroupDescription": draw(value), "Tags": tags}


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


def _overlaps(a, b):
    return pointers.is_prefix(a, b) or pointers.is_prefix(b, a)


def _by_index(doc, pointer):
    """`pointer` with its key-selected list segments written as indices of `doc`."""
    out, node = [], doc
    for part in pointers.split(pointer):
        if isinstance(node, list) and not part.isdigit():
            keyed = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("Key") == part]
            part = str(keyed[0]) if keyed else part
        out.append(part)
        try:
            node = pointers.resolve(node, pointers.join([part]))
        except pointers.Missing:
            node = None
    return pointers.join(out)


def _is_source(node):
    return isinstance(node, dict) and len(node) == 1 and "$source" in node


def resolve_from_scratch(components):
    """{name: (domain, sorted pending, shape)} for {name: (schema, id, properties, resource_value)}.

    `shape` is the properties document as far as it is known: resolved values where they
    are known, and where they are not, what their producer already knows of them (a pending
    Tag is an object already) with the still-unknown parts left as subscriptions."""
    done, busy = {}, set()

    def value_of(producer, path):
        """(value, known, shape) of a subscription's source."""
        root, _, rest = path[1:].partition("/")
        sub = "/" + rest if rest else ""
        if producer not in components:
            return None, False, None
        schema, cid, _, resource_value = components[producer]
        if root == "si":
            doc = shape = {"name": producer, "type": schema, "schema": schema, "id": cid}
        elif root == "resource_value":
            doc = shape = resource_value
        else:
            if producer in busy:
                return None, False, None
            doc, pending, shape = resolve(producer)
            if any(_overlaps(p, _by_index(doc, sub)) for p in pending):
                doc = None
        try:
            value = deepcopy(pointers.resolve(doc, sub)) if doc is not None else None
            known = doc is not None
        except pointers.Missing:
            value, known = None, False
        try:
            shaped = deepcopy(pointers.resolve(shape, sub)) if shape is not None else None
        except pointers.Missing:
            shaped = None
        return value, known, None if _is_source(shaped) else shaped

    def resolve(name):
        if name not in done:
            busy.add(name)
            schema, _, props, _ = components[name]
            domain, pending, shape = deepcopy(props), [], deepcopy(props)
            for target, spec in _walk_sources(props):
                value, known, shaped = value_of(spec["component"], spec["path"])
                if not known:
                    pending.append(target)
                pointers.set_value(domain, pointers.split(target), value)
                pointers.set_value(
                    shape,
                    pointers.split(target),
                    value if known else {"$source": spec} if shaped is None else shaped,
                )
            if schema == TEMPLATE:
                waiting = [n for n in placeholders(domain["Template"]) if f"/Variables/{n}" in pending]
                if waiting:
                    pending.append("/Rendered")
                    domain["Rendered"] = {"Value": None}
                else:
                    domain["Rendered"] = {"Value": render(domain["Template"], domain["Variables"])}
            busy.discard(name)
            done[name] = (domain, sorted(pending), shape)
        return done[name]

    return {name: resolve(name) for name in components}


def as_merged(head, entries):
    """HEAD ({name: (schema, id, properties, resource_value)}) with the rows laid over it."""
    comps = dict(head)
    for e in entries:
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


def _edges(components):
    return {
        n: {p for p, root, _ in r if root == "domain" or (root == "resource_value" and p != n)}
        for n, r in reads(components).items()
    }


def _reaches(edges, start, goal, seen):
    return any(
        p == goal or (p not in seen and not seen.add(p) and _reaches(edges, p, goal, seen))
        for p in edges.get(start, ())
    )


def has_cycle(components):
    edges = _edges(components)
    return any(_reaches(edges, n, n, set()) for n in edges)


def in_or_after_a_cycle(components):
    """Components whose value depends on a cycle: what they resolve to is anyone's guess."""
    edges = _edges(components)
    looped = {n for n in edges if _reaches(edges, n, n, set())}
    return {n for n in edges if n in looped or any(_reaches(edges, n, m, set()) for m in looped)}


def model_problems(components, scratch):
    """Why `components` could not be HEAD: cycles, dangling subscriptions, refused values."""
    problems = ["a cycle"] if has_cycle(components) else []
    for name, (schema, _, props, _) in components.items():
        problems += [
            f"{name}{t} dangles" for t, s in _walk_sources(props) if s["component"] not in components
        ]
        if validate_properties(schema, scratch[name][2]):
            problems.append(f"{name}'s schema refuses its values as far as they are known")
    return problems


def merge_problems(head, entries):
    """Why the (rebased) rows could not be merged into `head`, as the engine must see it."""
    problems = [f"conflict at {e.name}{c['path']}" for e in entries for c in e.conflicts]
    merged = as_merged(head, entries)
    scratch = resolve_from_scratch(merged)
    problems += model_problems(merged, scratch)
    for e in entries:
        if e.op == EntryOp.ADD and e.name in head:
            problems.append(f"{e.name} is taken in HEAD")
        if e.op == EntryOp.EDIT and (e.name not in head or head[e.name][1] != str(e.component_id)):
            problems.append(f"{e.name} is gone from HEAD")
        if e.op == EntryOp.DELETE:
            continue
        for target, s in _walk_sources(e.properties):  # each row's subscriptions, checked as at the edit
            producer, (root, _, rest) = s["component"], s["path"][1:].partition("/")
            if root != "domain" or producer not in merged:
                continue
            if producer == e.name:
                problems.append(f"{e.name}{target} reads its own /domain")
                continue
            domain, pending, _ = scratch[producer]
            sub = "/" + rest
            if not any(_overlaps(p, _by_index(domain, sub)) for p in pending) and jsondiff.absent_in(
                domain, sub
            ):
                problems.append(f"{e.name}{target}: {producer} has no value at {s['path']}")
    return problems


def expected_plan(head, merged, entries):
    """The components whose resolved desired value or identity differs after the merge."""
    before, after = resolve_from_scratch(head), resolve_from_scratch(merged)
    expected = {n for n in head.keys() ^ merged.keys()}
    expected |= {
        n for n in head.keys() & merged.keys() if before[n][:2] != after[n][:2] or head[n][2] != merged[n][2]
    }
    marked = {e.name for e in entries if e.op == EntryOp.EDIT and e.replace}
    expected |= marked
    replaced = marked | {
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
    return expected


def _lists(doc, at=""):
    """Pointers of the lists in `doc` (not looking inside subscriptions)."""
    if isinstance(doc, dict) and not _is_source(doc):
        for key, value in doc.items():
            yield from _lists(value, pointers.child(at, key))
    elif isinstance(doc, list):
        yield at


def _items(doc, at):
    value = jsondiff.value_at(doc, at)
    return Counter(json.dumps(v, sort_keys=True) for v in value) if isinstance(value, list) else Counter()


def assert_both_edits_kept(name, base, head, mine, entry):
    """After a rebase, each side's edit is in the result unless a conflict covers it. In a
    list, items move when the other side adds or removes one before them, so a list is
    checked as its items: base's, less what either side removed, plus what either added."""
    conflicted = [c["path"] for c in entry.conflicts]
    merged = entry.properties
    lists = {at for doc in (base, head, mine) for at in _lists(doc)}
    for side, doc in (("mine", mine), ("head", head)):
        for change in jsondiff.changes(base, doc):
            if any(_overlaps(p, change.path) for p in conflicted) or any(
                pointers.is_prefix(at, change.path) for at in lists
            ):
                continue
            assert jsondiff.value_at(merged, change.path) == jsondiff.value_at(doc, change.path), (
                f"the rebase dropped {side}'s edit at {name}{change.path}"
            )
    for at in lists:
        if any(_overlaps(p, at) for p in conflicted):
            continue
        was = _items(base, at)
        removed = (was - _items(head, at)) | (was - _items(mine, at))
        added = (_items(head, at) - was) | (_items(mine, at) - was)
        assert _items(merged, at) == was - removed + added, (
            f"the rebase lost an edit of the list {name}{at}: base {jsondiff.value_at(base, at)}, "
            f"HEAD {jsondiff.value_at(head, at)}, mine {jsondiff.value_at(mine, at)}, "
            f"merged {jsondiff.value_at(merged, at)}"
        )


# --- The machine ---------------------------------------------------------------------------


class Engine(RuleBasedStateMachine):
    change_sets = Bundle("change_sets")
    counter = itertools.count()

    def __init__(self):
        super().__init__()
        # Each example runs in a savepoint rolled back at its end: the tables stay small.
        self._example = transaction.atomic()
        self._example.__enter__()
        n = next(self.counter)
        event("examples")
        self.ws = Workspace.objects.create(name=f"prop {n}", slug=f"prop-{n}", approvals_required=0)
        self.user = USER["bob"]
        Membership.objects.create(workspace=self.ws, user=self.user, role=Role.EDITOR)
        self.open = []
        self.version = 0  # HEAD's
        self.base = {}  # change set -> the HEAD version it is based on
        self.literals = itertools.count()
        self.conflicts = {}  # change set -> {(component, path)} open after its last step
        self.checked = set()  # states already checked: the checks are functions of the rows

    def teardown(self):
        transaction.set_rollback(True)
        self._example.__exit__(None, None, None)

    # reading the rows

    def head(self):
        return {
            c.name: (c.schema, str(c.id), c.properties, c.resource_value)
            for c in Component.objects.filter(workspace=self.ws)
        }

    def snapshot(self):
        return sorted(
            (c.name, c.schema, repr(c.properties), repr(c.domain), repr(c.pending), c.version)
            for c in Component.objects.filter(workspace=self.ws)
        )

    def entries_of(self, pk):
        return sorted(
            (e.name, e.op, repr(e.properties), e.replace, repr(e.conflicts))
            for e in ChangeSetEntry.objects.filter(change_set_id=pk)
        )

    def conflicts_of(self, pk):
        return {
            (e.name, c["path"]) for e in ChangeSetEntry.objects.filter(change_set_id=pk) for c in e.conflicts
        }

    def some_name(self, data, seen, names=NAMES):
        """One of `names` that the change set sees (`seen`), or one that it does not."""
        seen = sorted(seen & set(names))
        return data.draw(
            st.sampled_from([*seen, *(n for n in names if n not in seen)][: len(seen) + 1]), label="name"
        )

    def fresh(self, value):
        if value == FRESH:
            return f"v{next(self.literals)}"
        if isinstance(value, dict):
            return {k: self.fresh(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fresh(v) for v in value]
        return value

    def behind(self):
        return [pk for pk in self.open if self.base[pk] != self.version]

    def names_in(self, pk):
        """The components the change set sees: HEAD's with its rows laid over them."""
        names = set(Component.objects.filter(workspace=self.ws).values_list("name", flat=True))
        for name, op in ChangeSetEntry.objects.filter(change_set_id=pk).values_list("name", "op"):
            (names.discard if op == EntryOp.DELETE else names.add)(name)
        return names

    # rules

    @initialize(
        names=st.lists(st.sampled_from(NAMES), unique=True, min_size=3, max_size=len(NAMES)), data=st.data()
    )
    def seed_head(self, names, data):
        """HEAD starts with three to five components, each reading only those before it and
        only values that suit any property, loaded as `workspace import` loads them."""
        components = []
        for i, name in enumerate(names):
            props = self.fresh(data.draw(properties_for(name, names[:i], seed=True)))
            components.append(ComponentSpec(name=name, schema=schema_of(name), properties=props))
        workspaces.import_spec(self.ws, self.user, Spec(components=components), name="seed")
        self.version = 1

    @initialize(target=change_sets)
    def first_change_sets(self):
        return multiple(self._new(), self._new())

    @precondition(lambda self: len(self.open) < 4)
    @rule(target=change_sets)
    def new_change_set(self):
        return self._new()

    def _new(self):
        cs = changesets.create_change_set(self.ws, self.user, f"cs {len(self.open)}")
        self.open.append(cs.pk)
        self.conflicts[cs.pk] = set()
        self.base[cs.pk] = cs.base_version
        return cs.pk

    def _edit(self, pk, action, may_drop=()):
        """Run an edit; a refused one changes nothing, and no edit loses a conflict other
        than those at `may_drop` (a component or a (component, path))."""
        before = self.entries_of(pk)
        try:
            action(ChangeSet.objects.get(pk=pk))
            event("edit accepted")
        except (ValidationError, NotFound, ConflictError):
            event("edit refused")
            assert self.entries_of(pk) == before, "a refused edit changed the change set"
        lost = self.conflicts[pk] - self.conflicts_of(pk)
        assert all(c[0] in may_drop or c in may_drop for c in lost), f"an edit dropped conflicts {lost}"
        self.conflicts[pk] -= lost

    @rule(pk=change_sets, kind=st.sampled_from(["upsert", "set", "remove", "delete"]), data=st.data())
    def edit(self, pk, kind, data):
        """Add or replace a component whole, set or remove one property, or delete it."""
        names = self.names_in(pk)
        if kind == "upsert":
            name = data.draw(st.sampled_from(NAMES), label="name")
            props = self.fresh(data.draw(properties_for(name, names), label="properties"))
            replace = data.draw(st.sampled_from([None] * 4 + [True]), label="replace")
            call = (changesets.upsert_component, name, schema_of(name), props, replace)
        elif kind == "set":
            name = self.some_name(data, names, GROUPS)
            path = data.draw(
                st.sampled_from(["/GroupDescription", "/Tags/0/Value", "/Tags/1/Value", "/Tags/1"])
            )
            value = self.fresh(data.draw(values_from(names), label="value"))
            call = (
                changesets.set_property,
                name,
                path,
                {"Key": "k1", "Value": value} if path == "/Tags/1" else value,
            )
        elif kind == "remove":
            name = self.some_name(data, names, GROUPS)
            path = data.draw(
                st.sampled_from(["/Tags/0", "/Tags/1", "/Tags/k1", "/GroupDescription", "Tags/0"])
            )
            call = (changesets.remove_property, name, path)
        else:
            name = self.some_name(data, names)
            call = (changesets.delete_component, name)
        self._edit(
            pk, lambda cs: call[0](cs, self.user, *call[1:]), may_drop={name} if kind == "delete" else ()
        )

    @rule(pk=change_sets, data=st.data())
    def revert(self, pk, data):
        """A row of some change set, or any name in this one."""
        rows = sorted(
            ChangeSetEntry.objects.filter(change_set_id__in=self.open).values_list("change_set_id", "name")
        )
        pk, name = data.draw(st.sampled_from([*rows, (pk, data.draw(st.sampled_from(NAMES)))]))
        self._edit(pk, lambda cs: changesets.revert_component(cs, self.user, name), may_drop={name})

    @precondition(lambda self: len(self.open) >= 2)
    @rule(data=st.data())
    def edit_in_two(self, data):
        """Two change sets edit the same components of HEAD, as two teams do: the same
        component (its paths, its list; in a race, the first merges and the other rebases,
        and then perhaps a third edit of it merges and the other rebases again),
        or each one reading the other, or one deleting what the other starts to read; each
        is fine alone."""
        first, second = data.draw(st.lists(st.sampled_from(self.open), min_size=2, max_size=2, unique=True))
        heads = sorted(
            Component.objects.filter(workspace=self.ws, name__in=GROUPS).values_list("name", flat=True)
        )
        if len(heads) < 2:
            return
        x, y = data.draw(st.lists(st.sampled_from(heads), min_size=2, max_size=2, unique=True))
        kind = data.draw(
            st.sampled_from(
                ["same", "race", "race, and HEAD moves on", "cycle", "delete what the other reads"]
            )
        )
        if kind == "cycle":
            for pk, (reader, read) in ((first, (x, y)), (second, (y, x))):
                self._set(pk, reader, "/Tags/0/Value", src(read, "/domain/GroupDescription"))
            return
        if kind == "delete what the other reads":
            self._edit(first, lambda cs: changesets.delete_component(cs, self.user, y), may_drop={y})
            self._set(second, x, "/Tags/0/Value", src(y, "/resource_value/GroupId"))
            return
        for pk in (first, second):
            path = data.draw(
                st.sampled_from(["/GroupDescription", "/Tags/0/Value", "/Tags/1", "-/Tags/0", "-/Tags/1"])
            )
            if path.startswith("-"):
                self._edit(pk, lambda cs, path=path: changesets.remove_property(cs, self.user, x, path[1:]))
            else:
                self._set(
                    pk, x, path, self.fresh({"Key": "k1", "Value": FRESH} if path == "/Tags/1" else FRESH)
                )
        if kind.startswith("race") and self._merge(first):  # the first to merge wins; the other rebases
            self._rebase(second)
            if kind.endswith("moves on"):  # a third edit of the component merges before the next rebase
                third = self._new()
                path = data.draw(st.sampled_from(["/GroupDescription", "/Tags/0/Value"]))
                self._set(third, x, path, self.fresh(FRESH))
                self._merge(third)
                self._rebase(second)

    def _set(self, pk, name, path, value):
        self._edit(pk, lambda cs: changesets.set_property(cs, self.user, name, path, value))

    @precondition(lambda self: self.behind())
    @rule(data=st.data())
    def rebase(self, data):
        self._rebase(data.draw(st.sampled_from(self.behind())))

    def _rebase(self, pk):
        cs = ChangeSet.objects.get(pk=pk)
        heads = {c.id: c.properties for c in Component.objects.filter(workspace=self.ws)}
        before = {e.name: (e.op, e.base_properties, e.properties, e.component_id) for e in cs.entries.all()}
        changesets.rebase(cs, self.user)
        after = {e.name: e for e in cs.entries.all()}
        now = self.conflicts_of(pk)
        for name, path in self.conflicts[pk]:
            if name in after:
                assert any(n == name and pointers.is_prefix(p, path) for n, p in now), (
                    f"the rebase dropped the unresolved conflict at {name}{path}"
                )
        self.conflicts[pk] = now
        self.base[pk] = self.version
        event("rebase with conflicts" if now else "rebase clean")
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
            assert_both_edits_kept(name, base or {}, head, mine, entry)

    @precondition(lambda self: any(self.conflicts[pk] for pk in self.open))
    @rule(take=st.sampled_from(["head", "mine"]), data=st.data())
    def resolve(self, take, data):
        pk = data.draw(st.sampled_from([pk for pk in self.open if self.conflicts[pk]]))
        c = data.draw(st.sampled_from(changesets.open_conflicts(ChangeSet.objects.get(pk=pk))))
        self._edit(
            pk,
            lambda cs: changesets.resolve_conflict(cs, self.user, c["component"], c["path"], take),
            may_drop={(c["component"], c["path"])} if take == "mine" else {c["component"]},
        )

    @rule(target=change_sets, pk=consumes(change_sets))
    def merge(self, pk):
        """A merged change set leaves the bundle; a refused one stays in it."""
        return multiple() if self._merge(pk) else pk

    @precondition(lambda self: len(self.open) >= 2)
    @rule()
    def merge_in_turn(self):
        """Every open change set, oldest first, as a release train merges them."""
        for pk in list(self.open):
            self._merge(pk)

    def _merge(self, pk):
        """Merge, if the change set is not merged yet; True when it is (now or before)."""
        cs = ChangeSet.objects.get(pk=pk)
        if cs.merged_version is not None:
            with pytest.raises(ConflictError, match="already merged"):
                changesets.merge(cs, self.user)
            return True
        head_before, snapshot, entries_before = self.head(), self.snapshot(), self.entries_of(pk)
        # What the merge will see: the rows rebased onto HEAD (tried, then rolled back).
        with transaction.atomic():
            changesets.rebase(cs, self.user)
            rebased = list(ChangeSetEntry.objects.filter(change_set_id=pk))
            predicted = merge_problems(head_before, rebased)
            merged = as_merged(head_before, rebased)
            if not any(e.conflicts for e in rebased) and not in_or_after_a_cycle(merged):
                planned = {a.component for a in plan_actions(ChangeSet.objects.get(pk=pk)).actions}
                event("plan checked before a merge")
                assert planned == expected_plan(head_before, merged, rebased), "the plan to merge is wrong"
            transaction.set_rollback(True)
        try:
            version = changesets.merge(cs, self.user)
        except (ValidationError, ConflictError) as exc:
            event("merge refused")
            assert self.snapshot() == snapshot, "a refused merge changed HEAD"
            assert self.entries_of(pk) == entries_before, "a refused merge changed the change set"
            assert predicted, f"the merge was refused for no reason: {exc}"
            if any(e.conflicts for e in rebased):
                self._rebase(pk)  # as its author does, to see the conflicts and resolve them
            return False
        event("merge done")
        assert not self.conflicts[pk], f"merged with the unresolved conflicts {self.conflicts[pk]}"
        assert predicted == [], f"merged despite {predicted}"
        assert self.head() == merged, "HEAD after the merge is not HEAD with the change set's rows"
        self.open.remove(pk)
        self.version = version
        return True

    @rule(name=st.sampled_from(GROUPS), group=st.sampled_from(["sg-1", "sg-2"]))
    def observe(self, name, group):
        """An apply records what AWS reports and propagates it."""
        component = Component.objects.filter(workspace=self.ws, name=name).first()
        if component is not None:
            component.resource_value = {"GroupId": group}
            component.save(update_fields=["resource_value"])
            graph.propagate(self.ws, {name}, roots=("resource_value",))

    # the checks, after every step

    @invariant()
    def holds(self):
        rows = list(Component.objects.filter(workspace=self.ws))
        subscriptions = list(
            Subscription.objects.filter(workspace=self.ws)
            .order_by("change_set_id", "consumer_name", "target_path")
            .values_list("change_set_id", "consumer_name", "target_path", "producer_name", "source_path")
        )
        head_state = repr(
            sorted(
                (c.name, c.schema, str(c.id), c.properties, c.resource_value, c.domain, c.pending)
                for c in rows
            )
        )
        head_subscriptions = [s for s in subscriptions if s[0] is None]
        if ("head", head_state, repr(head_subscriptions)) not in self.checked:
            event("HEAD states checked")
            self.check_head(rows)
            self.checked.add(("head", head_state, repr(head_subscriptions)))
        event("steps")
        head = {c.name: (c.schema, str(c.id), c.properties, c.resource_value) for c in rows}
        entries = {pk: [] for pk in self.open}
        for e in ChangeSetEntry.objects.filter(change_set_id__in=self.open).order_by("name"):
            entries[e.change_set_id].append(e)
        for cs in ChangeSet.objects.filter(pk__in=self.open).select_related("workspace"):
            head_version = cs.workspace.head_version
            state = (
                cs.pk,
                cs.base_version,
                head_version,
                head_state,
                repr(
                    [
                        (e.name, e.op, str(e.component_id), e.properties, e.replace, e.conflicts)
                        for e in entries[cs.pk]
                    ]
                ),
                repr([s for s in subscriptions if s[0] in (None, cs.pk)]),
            )
            if state not in self.checked:
                event("change set states checked")
                self.check_change_set(cs, entries[cs.pk], head, head_version)
                self.checked.add(state)

    def check_head(self, rows):
        names = [c.name for c in rows]
        assert len(names) == len(set(names)), "HEAD holds a name twice"
        head = {c.name: (c.schema, str(c.id), c.properties, c.resource_value) for c in rows}
        scratch = resolve_from_scratch(head)
        for c in rows:
            assert (c.domain, sorted(c.pending)) == scratch[c.name][:2], f"HEAD {c.name} resolved wrongly"
        assert model_problems(head, scratch) == [], "HEAD is not a valid model"

    def check_change_set(self, cs, entries, head, head_version):
        merged = as_merged(head, entries)
        scratch = resolve_from_scratch(merged)
        view = graph.GraphView(self.ws, cs, entries=entries)
        view.head_components(NAMES)  # one query for what the views below read of HEAD
        looped = in_or_after_a_cycle(merged)  # two change sets each valid alone: the merge refuses it
        for name, expected in scratch.items():
            if name in looped:
                continue
            got = view.view(name)
            assert (got.domain, sorted(got.pending)) == expected[:2], f"#{cs.pk} reads {name} wrongly"
        if cs.base_version != head_version or any(e.conflicts for e in entries):
            event("plan not checked: behind or conflicted")
            return  # the plan is re-made after the rebase the merge does first
        if looped or any(e.op == EntryOp.EDIT and e.name not in head for e in entries):
            event("plan not checked: cycle or gone")
            return
        planned = {a.component for a in plan_actions(cs).actions}
        event("plan checked" if planned else "empty plan checked")
        assert planned == expected_plan(head, merged, entries), f"#{cs.pk} plans wrongly"


USER = {}


@pytest.mark.django_db
def test_the_engine_holds_its_invariants_under_random_operations(django_user_model):
    USER["bob"] = django_user_model.objects.create_user("bob")
    Engine.TestCase.settings = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    STATS.clear()
    Engine.TestCase().runTest()
    print(dict(sorted(STATS.items())))
