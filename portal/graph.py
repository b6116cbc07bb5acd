"""Subscriptions: finding them in properties, resolving them, checking them at the
edit, and propagating values incrementally through the workspace.

A subscription is `{"$source": {"component": NAME, "path": POINTER}}` anywhere in a
component's properties (portal/subscriptions.py defines it). POINTER is rooted at
/domain (the producer's desired properties, resolved), /resource_value (what AWS
reported) or /si (name, type, id).

The Subscription table indexes these edges so that an edit finds its dependents
without loading the workspace; the JSON stays the source of truth.
"""

from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import cached_property

from django.db import transaction
from django.db.models import Q

from . import bulk, jsondiff, pointers, statements, subscriptions
from .errors import ValidationError
from .models import Component, Subscription
from .schemas import validate_properties, write_only_for
from .secrets import mask_at
from .string_template import placeholders, render
from .subscriptions import ROOTS, SOURCE_KEY, shape_error
from .subscriptions import is_subscription as is_source  # noqa: F401  (the name pages and forms use)

STRING_TEMPLATE = "Portal::StringTemplate"


@dataclass(frozen=True)
class Source:
    target: str  # pointer inside the consumer's properties
    component: str
    path: str
    error: str | None = field(default=None, compare=False)  # why it is malformed, if it is

    @classmethod
    def written_at(cls, target, subscription):
        body = subscription[SOURCE_KEY]
        body = body if isinstance(body, dict) else {}
        return cls(target, body.get("component"), body.get("path"), shape_error(subscription))

    @cached_property
    def root(self):
        return self.path.split("/", 2)[1] if self.path.count("/") >= 1 else ""

    @cached_property
    def subpath(self):
        """The path below the root: '/resource_value/Outputs/0' -> '/Outputs/0'."""
        return self.path[len(self.root) + 1 :]


def find_sources(properties):
    """Every $source in `properties`, depth first, in document order."""
    return [Source.written_at(target, node) for target, node in subscriptions.find(properties)]


def source_error(source):
    """A message when a $source is malformed, else None."""
    return source.error


@dataclass
class View:
    """What a producer offers to its subscribers."""

    name: str
    schema: str
    id: str
    domain: dict
    pending: list  # pointers (below /domain) whose value is not known yet
    resource_value: dict | None
    exists_in_head: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def si(self):
        return {"name": self.name, "type": self.schema, "schema": self.schema, "id": self.id}

    @classmethod
    def of_component(cls, c):
        return cls(c.name, c.schema, str(c.id), c.domain or {}, list(c.pending or []), c.resource_value)


PENDING = object()


def value_at(view, source):
    """The value `source` points at in `view`, or PENDING while it is not known."""
    root, sub = source.root, source.subpath
    if root == "si":
        try:
            return pointers.resolve(view.si, sub)
        except pointers.Missing:
            return PENDING
    if root == "resource_value":
        if view.resource_value is None:
            return PENDING
        try:
            return pointers.resolve(view.resource_value, sub)
        except pointers.Missing:
            return PENDING
    if view.pending and _pending_under(view, sub):
        return PENDING
    try:
        return pointers.resolve(view.domain, sub)
    except pointers.Missing:
        return PENDING


def _pending_under(view, sub):
    """The producer's pending pointers that overlap `sub` (a path below /domain), however
    `sub` selects list items (by index or by key)."""
    sub = pointers.by_index(view.domain, sub)
    return [p for p in view.pending if pointers.is_prefix(p, sub) or pointers.is_prefix(sub, p)]


def known_value(graph, source, _depth=0):
    """What is known already of the value a pending `source` will bring: PENDING when
    nothing is, else the producer's value with each part still pending inside it left as a
    subscription (a schema checks a subscription by its shape only). A Tag object whose
    Value waits for AWS is an object already, whatever AWS says."""
    if source.root != "domain" or source.error or _depth > 64:
        return PENDING
    view = graph.view(source.component)
    if view is None:
        return PENDING
    sub = pointers.by_index(view.domain, source.subpath)
    pending = _pending_under(view, sub)
    sources = {s.target: s for s in graph.sources_of(source.component)}
    above = next((p for p in pending if pointers.is_prefix(p, sub)), None)
    if above is not None:  # the producer waits for this whole value: ask what feeds it
        feeding = sources.get(above)
        if feeding is None:
            return PENDING
        deeper = Source(source.target, feeding.component, feeding.path + sub[len(above) :])
        return known_value(graph, deeper, _depth + 1)
    try:
        value = jsondiff.json_copy(pointers.resolve(view.domain, sub))
    except pointers.Missing:
        return PENDING
    for p in pending:  # each below `sub`: what feeds it, or a subscription to it
        feeding = sources.get(p)
        inner = PENDING if feeding is None else known_value(graph, feeding, _depth + 1)
        if inner is PENDING:
            at = (feeding.component, feeding.path) if feeding else (source.component, "/domain" + p)
            inner = {SOURCE_KEY: {"component": at[0], "path": at[1]}}
        pointers.set_value(value, pointers.split(p[len(sub) :]), inner)
    return value


def known_values(graph, properties, pending, sources=None):
    """{target: known_value} for the pending subscriptions of `properties` (`sources`:
    find_sources of them, when known) of which something is known already."""
    if not pending:
        return {}
    out = {}
    for source in find_sources(properties) if sources is None else sources:
        if source.target in pending and source.root == "domain":
            value = known_value(graph, source)
            if value is not PENDING:
                out[source.target] = value
    return out


def resolve_properties(name, schema, properties, lookup, sources=None):
    """Substitute every $source in `properties` (`sources`: find_sources of them, when known).

    `lookup(name)` returns the producer's View (or None if there is no such component).
    Returns (domain, pending pointers). Pending values are left as None in `domain`.
    """
    domain = jsondiff.json_copy(properties)
    pending = []
    for source in find_sources(properties) if sources is None else sources:
        view = lookup(source.component)
        value = PENDING if view is None or source_error(source) else value_at(view, source)
        parts = pointers.split(source.target)
        if value is PENDING:
            pending.append(source.target)
            value = None
        if parts:
            pointers.set_value(domain, parts, jsondiff.json_copy(value))
        else:
            domain = jsondiff.json_copy(value) if isinstance(value, dict) else {}
    if schema == STRING_TEMPLATE:
        _render_template(domain, pending)
    return domain, pending


def _render_template(domain, pending):
    template = domain.get("Template") or ""
    variables = domain.get("Variables") or {}
    waiting = [
        n for n in placeholders(template) if any(pointers.is_prefix(f"/Variables/{n}", p) for p in pending)
    ]
    if waiting:
        pending.append("/Rendered")
        domain["Rendered"] = {"Value": None}
        return
    try:
        domain["Rendered"] = {"Value": render(template, variables)}
    except ValidationError:
        pending.append("/Rendered")
        domain["Rendered"] = {"Value": None}


def is_dependency(source, consumer_name):
    """Does this edge order work (producer before consumer)? /si is known up front and
    a component reading its own /resource_value is a follow-up update, not a cycle."""
    if source.root == "si":
        return False
    return not (source.component == consumer_name and source.root == "resource_value")


# --- The workspace graph, as HEAD or as a change set sees it ------------------------------


class GraphView:
    """Read access to components and edges as HEAD (change_set=None) or a change set sees them.

    A change set's overlay rows replace HEAD's components of the same name (or hide them
    when deleted); their edges replace HEAD's edges of that consumer.
    """

    def __init__(self, workspace, change_set=None, entries=None, head_edges=None):
        self.workspace = workspace
        self.change_set = change_set
        self.head_edges = head_edges  # a HeadEdges that HEAD's edges are read from
        if change_set is not None and entries is None:
            entries = list(change_set.entries.all())
        self.entries = {e.name: e for e in (entries or [])}
        self._head = {}
        self._sources = {}  # name -> (properties, their sources)
        self._resolved = {}
        self._reached = None

    def preload(self):
        """Fetch, in one query, HEAD rows of every overlaid component and of what they read."""
        names = set(self.entries)
        for e in self.entries.values():
            names.update(s.component for s in self.sources_of(e.name) if isinstance(s.component, str))
        self.head_components(sorted(names))
        return self

    # components
    def remember(self, *components):
        """HEAD rows the caller has just read (fresh), so that the view does not read them again."""
        for c in components:
            self._head[c.name] = c
        return self

    def head_components(self, names):
        wanted = [n for n in names if n not in self._head]
        if wanted:
            found = {c.name: c for c in _head_rows(self.workspace, wanted)}
            for n in wanted:
                self._head[n] = found.get(n)
        return {n: self._head[n] for n in names}

    def exists(self, name):
        entry = self.entries.get(name)
        if entry is not None:
            return entry.op != "delete"
        return self.head_components([name])[name] is not None

    def properties_of(self, name):
        entry = self.entries.get(name)
        if entry is not None:
            return None if entry.op == "delete" else entry.properties
        c = self.head_components([name])[name]
        return None if c is None else c.properties

    def sources_of(self, name):
        """find_sources of `name`'s properties as this graph has them ([] when it has none),
        found once per properties document."""
        return self.sources_for(name, self.properties_of(name) or {})

    def sources_for(self, name, properties):
        """find_sources(properties), remembered when they are what this graph holds for `name`."""
        memo = self._sources.get(name)
        if memo is not None and memo[0] is properties:
            return memo[1]
        found = find_sources(properties)
        entry = self.entries.get(name)
        held = entry.properties if entry is not None else getattr(self._head.get(name), "properties", None)
        if held is properties:
            self._sources[name] = (properties, found)
        return found

    def view(self, name):
        """The producer view of `name` in this graph: HEAD with the change set's rows, resolved
        as if merged, through every component the rows reach (touched or not)."""
        self._resolve_through()
        if name in self._resolved:
            return self._resolved[name]
        c = self.head_components([name])[name]
        return None if c is None else View.of_component(c)

    def reached(self):
        """HEAD components (not rows of the change set) that read something the rows move,
        resolved again: their resolution may differ from HEAD's."""
        self._resolve_through()
        return self._reached

    def _resolve_through(self):
        if self._reached is not None:
            return
        self._reached = set()
        if not self.entries:
            return
        touched = set(self.entries)
        reached, frontier, roots, first_hop = set(), touched, ROOTS, None  # a deleted row empties every root
        while frontier:
            found = set()
            for edges in self.consumers_of(frontier, roots).values():
                for consumer, source in edges:
                    if consumer != source.component and consumer not in touched and consumer not in reached:
                        found.add(consumer)
            reached |= found
            first_hop = found if first_hop is None else first_hop
            frontier, roots = found, ("domain",)  # past the first hop only resolved values move
        names = touched | reached
        edges = self.producers_of(names)
        # Rows past the first hop are read only if something they read moves.
        near = touched | first_hop
        self.head_components(sorted(near | {s.component for n in near for s in edges.get(n, [])}))
        dep_edges = {c: {s.component for s in ss if is_dependency(s, c)} for c, ss in edges.items()}
        moved, done = set(touched), set()

        def due(name):
            return name in touched or any(s.component in moved for s in edges.get(name, []))

        for wave in topological_waves(names, dep_edges):
            # One query for the rows of a wave that will be resolved, and what they read.
            now = [n for n in wave if due(n)]
            self.head_components(sorted({*now, *(s.component for n in now for s in edges.get(n, []))}))
            for name in wave:
                done.add(name)
                if not due(name):
                    continue  # nothing it reads moved: HEAD's resolution stands
                self._resolve_in_wave(name, names, done, edges, touched, moved)

    def _resolve_in_wave(self, name, names, done, edges, touched, moved):
        """Resolve `name`, and note whether it moved (its consumers are resolved again)."""
        result = self._resolve_one(name, lambda n: n in names and n not in done)
        self._resolved[name] = result
        head = self._head.get(name)
        if name in touched or result is None or head is None:
            return
        self._reached.add(name)
        if (
            result.domain != (head.domain or {})
            or result.pending != list(head.pending or [])
            or any(  # what is known of a pending value may move while the value waits
                s.target in result.pending and s.root == "domain" and s.component in moved
                for s in edges.get(name, [])
            )
        ):
            moved.add(name)

    def _resolve_one(self, name, is_unresolved):
        entry = self.entries.get(name)
        head = self.head_components([name])[name]
        if entry is not None and entry.op == "delete":
            return None
        if entry is None:
            if head is None:
                return None
            schema, cid, properties, in_head = head.schema, str(head.id), head.properties, True
        else:
            head = head if entry.op == "edit" else None
            schema, cid, properties, in_head = (
                entry.schema,
                str(entry.component_id),
                entry.properties,
                head is not None,
            )
        resource_value = head.resource_value if head is not None else None
        placeholder = View(name, schema, cid, {}, ["/"], resource_value, in_head)

        def lookup(producer):
            if producer == name:
                return placeholder
            if producer in self._resolved:
                return self._resolved[producer]
            if is_unresolved(producer):
                return self._unresolved(producer)
            c = self.head_components([producer])[producer]
            return None if c is None else View.of_component(c)

        domain, pending = resolve_properties(
            name, schema, properties, lookup, self.sources_for(name, properties)
        )
        return View(name, schema, cid, domain, pending, resource_value, in_head)

    def _unresolved(self, producer):
        """A producer not resolved yet: its /si is known (it is read in any order); its
        values are pending (read before it is resolved only through a cycle that slipped
        through)."""
        entry = self.entries.get(producer)
        if entry is not None:
            if entry.op == "delete":
                return None
            return View(producer, entry.schema, str(entry.component_id), {}, ["/"], None)
        c = self.head_components([producer])[producer]
        return None if c is None else View(producer, c.schema, str(c.id), {}, ["/"], None)

    # edges
    def producers_of(self, names):
        """{consumer: [Source, ...]} for these consumers, as this graph sees them."""
        out = defaultdict(list)
        head_names = []
        for n in names:
            entry = self.entries.get(n)
            if entry is not None:
                if entry.op != "delete":
                    out[n].extend(self.sources_for(n, entry.properties))
            else:
                head_names.append(n)
        if head_names:
            rows = Subscription.objects.filter(
                workspace=self.workspace, change_set=None, consumer_name__in=head_names
            ).values_list("consumer_name", "target_path", "producer_name", "source_path")
            for consumer, target, producer, path in rows:
                out[consumer].append(Source(target, producer, path))
        return out

    def consumers_of(self, names, roots=ROOTS):
        """{producer: [(consumer, Source), ...]} as this graph sees it."""
        out = defaultdict(list)
        names = list(names)
        if not names:
            return out
        if self.change_set is None and self.head_edges is not None:
            for producer, edges in self.head_edges.consumers_of(names).items():
                out[producer] = [(consumer, source) for consumer, source in edges if source.root in roots]
            return out
        rows = Subscription.objects.filter(workspace=self.workspace, producer_name__in=names)
        if self.change_set is None:
            rows = rows.filter(change_set=None)
        else:
            rows = rows.filter(Q(change_set=None) | Q(change_set=self.change_set))
        for change_set_id, consumer, target, producer, path in rows.values_list(
            "change_set_id", "consumer_name", "target_path", "producer_name", "source_path"
        ):
            if change_set_id is None and consumer in self.entries:
                continue  # the change set's row for this consumer has edges of its own
            source = Source(target, producer, path)
            if source.root in roots:
                out[producer].append((consumer, source))
        return out

    def downstream(self, names, roots=("domain", "resource_value"), first_hop=None):
        """Every component that (transitively) subscribes to one of `names`; `first_hop` is
        consumers_of(names, roots) when the caller has it already."""
        seen, frontier = set(), set(names)
        hop = first_hop
        while frontier:
            found = set()
            for edges in (hop if hop is not None else self.consumers_of(frontier, roots)).values():
                for consumer, source in edges:
                    if is_dependency(source, consumer) and consumer not in seen and consumer not in names:
                        found.add(consumer)
            seen |= found
            frontier, hop = found, None
            roots = ("domain",)  # past the first hop only resolved desired values move
        return seen


class HeadEdges:
    """HEAD's subscription edges by producer, each producer's read once and remembered, for
    a caller that asks again and again while HEAD cannot move (an apply between its merge
    and its end: the caller keys it by the workspace's HEAD version). `preload` reads the
    edges of many producers in one query."""

    def __init__(self, workspace):
        self.workspace = workspace
        self._by_producer = {}

    def preload(self, names):
        missing = sorted(set(names) - set(self._by_producer))
        for start in range(0, len(missing), 1000):
            chunk = missing[start : start + 1000]
            found = defaultdict(list)
            rows = Subscription.objects.filter(
                workspace=self.workspace, change_set=None, producer_name__in=chunk
            ).values_list("consumer_name", "target_path", "producer_name", "source_path")
            for consumer, target, producer, path in rows:
                found[producer].append((consumer, Source(target, producer, path)))
            for name in chunk:
                self._by_producer[name] = found.get(name, [])
        return self

    def consumers_of(self, names):
        """{producer: [(consumer, Source), ...]} for these producers."""
        self.preload(names)
        return {n: self._by_producer[n] for n in names}


# --- Checks at the edit ------------------------------------------------------------------


def check_subscriptions(graph, name, properties):
    """Errors for malformed paths, unknown components, self-references to /domain and
    cycles, as [{"path", "message"}]. Values not known yet are fine (pending)."""
    errors = []
    producers = set()
    for source in graph.sources_for(name, properties):
        message = source_error(source)
        if message is None and source.component != name and not graph.exists(source.component):
            message = f"no component named {source.component!r} in this workspace"
        if message is None and source.component == name and source.root == "domain":
            message = "a component cannot subscribe to its own /domain"
        if message is None:
            message = _domain_path_error(graph, source)
        if message:
            errors.append({"path": source.target or "/", "message": message})
        elif is_dependency(source, name):
            producers.add(source.component)
    if not errors and producers:
        cycle = _find_cycle(graph, name, producers)
        if cycle:
            errors.append(
                {
                    "path": "/",
                    "message": "subscription cycle: " + " -> ".join(cycle) + " (each waits for the next)",
                }
            )
    return errors


def _domain_path_error(graph, source):
    if source.root != "domain" or source.component == "":
        return None
    view = graph.view(source.component)
    if view is None or value_at(view, source) is not PENDING:
        return None
    if _pending_under(view, source.subpath):
        return None
    return f"{source.component!r} has no value at {source.path}"


def _find_cycle(graph, name, producers):
    """A path producer -> ... -> name if some producer already depends on `name`."""
    parent = {p: None for p in producers}
    frontier = set(producers)
    while frontier:
        if name in frontier:
            chain, node = [], name
            while node is not None:
                chain.append(node)
                node = parent.get(node)
            return [name, *chain[::-1]]
        edges = graph.producers_of(frontier)
        nxt = set()
        for consumer in frontier:
            for source in edges.get(consumer, []):
                if is_dependency(source, consumer) and source.component not in parent:
                    parent[source.component] = consumer
                    nxt.add(source.component)
        frontier = nxt
    return None


# --- Index maintenance and propagation in HEAD -------------------------------------------


def index_rows(workspace, consumer_name, properties, change_set=None, sources=None):
    return [
        Subscription(
            workspace=workspace,
            change_set=change_set,
            consumer_name=consumer_name,
            target_path=s.target,
            producer_name=s.component,
            source_path=s.path,
        )
        for s in (find_sources(properties) if sources is None else sources)
        if source_error(s) is None
    ]


def reindex(workspace, items, change_set=None, graph=None):
    """Rebuild the subscription index for {consumer_name: properties or None (deleted)};
    `graph`, a GraphView that holds these properties, has found their sources already."""
    Subscription.objects.filter(
        workspace=workspace, change_set=change_set, consumer_name__in=list(items)
    ).delete()
    rows = []
    for consumer, props in items.items():
        if props is not None:
            sources = graph.sources_for(consumer, props) if graph is not None else None
            rows.extend(index_rows(workspace, consumer, props, change_set, sources))
    Subscription.objects.bulk_create(rows, batch_size=1000)


def topological(names, edges):
    """Order `names` so producers come first; `edges` = {consumer: {producers}}."""
    indegree = {n: 0 for n in names}
    consumers = defaultdict(list)
    for consumer, prods in edges.items():
        for p in prods:
            if p in indegree and consumer in indegree and p != consumer:
                indegree[consumer] += 1
                consumers[p].append(consumer)
    queue = deque(sorted(n for n, d in indegree.items() if d == 0))
    order = []
    while queue:
        n = queue.popleft()
        order.append(n)
        for c in consumers[n]:
            indegree[c] -= 1
            if indegree[c] == 0:
                queue.append(c)
    placed = set(order)
    order.extend(sorted(n for n in names if n not in placed))  # cycles (should not exist) last
    return order


def topological_waves(names, edges):
    """`names` in waves, producers first: a wave reads (through `edges` = {consumer:
    {producers}}) only from earlier waves. What a cycle holds (should not exist) comes
    last, one at a time, by name."""
    indegree = {n: 0 for n in names}
    consumers = defaultdict(list)
    for consumer, prods in edges.items():
        for p in prods:
            if p in indegree and consumer in indegree and p != consumer:
                indegree[consumer] += 1
                consumers[p].append(consumer)
    waves, wave, placed = [], sorted(n for n, d in indegree.items() if d == 0), set()
    while wave:
        waves.append(wave)
        placed.update(wave)
        following = []
        for n in wave:
            for c in consumers[n]:
                indegree[c] -= 1
                if indegree[c] == 0:
                    following.append(c)
        wave = sorted(following)
    waves.extend([n] for n in sorted(n for n in names if n not in placed))
    return waves


def _head_rows(workspace, names, lock=False):
    """HEAD's components of the workspace named `names` (locked in name order with `lock`)."""
    return statements.select(
        Component,
        "{workspace_id} = %s AND {name} IN " + statements.placeholders(len(names)),
        [workspace.pk, *names],
        order_by=("name",) if lock else (),
        lock=lock,
    )


def propagate(workspace, changed, roots=("domain", "resource_value"), head_edges=None):
    """Recompute `domain`/`pending` of the components in `changed` and of everything that
    depends on them in HEAD; only what depends on the change is touched.

    `roots`: which of the changed components' values moved (an edit moves /domain, an
    observed resource moves /resource_value). `head_edges`: a HeadEdges to read the
    subscription index from. Returns the names whose domain changed.
    """
    graph = GraphView(workspace, head_edges=head_edges)
    changed = set(changed)
    if not changed:
        return set()
    first_hop = graph.consumers_of(changed, roots)
    affected = changed | graph.downstream(changed, roots, first_hop)
    if "domain" not in roots:
        # A component that reads its own moved root (a self-referencing rule reading its
        # group id) changes its /domain as well, and so moves what reads that.
        self_readers = {
            consumer
            for edges in first_hop.values()
            for consumer, source in edges
            if consumer == source.component
        }
        affected |= graph.downstream(self_readers, ("domain",))
        if affected == changed and not self_readers:
            return set()  # only observed values moved, and nothing reads them
    # Inside a caller's transaction, part of it (no savepoint: nothing here is retried).
    with transaction.atomic(savepoint=False):
        # Lock the rows this will rewrite (in name order, so two propagations never
        # deadlock) and read them, then their producers, fresh: concurrent propagations
        # that share a consumer queue here instead of overwriting each other's result.
        components = {c.name: c for c in _head_rows(workspace, sorted(affected), lock=True)}
        graph.remember(*components.values())
        edges = {
            name: [s for s in find_sources(c.properties) if s.error is None] for name, c in components.items()
        }
        # Only observed values moved: a changed component that reads nothing affected (not
        # even itself) resolves as it did, and its own producers need not be read.
        settled = (
            set()
            if "domain" in roots
            else {n for n in changed if n in edges and all(s.component not in affected for s in edges[n])}
        )
        producers = {s.component for n, sources in edges.items() if n not in settled for s in sources}
        components.update(graph.head_components(sorted(producers - set(components))))
        views = {n: View.of_component(c) for n, c in components.items() if c is not None}
        dep_edges = {c: {s.component for s in srcs if is_dependency(s, c)} for c, srcs in edges.items()}
        dirty = []
        for name in topological(affected, dep_edges):
            c = components.get(name)
            if c is None or name in settled:
                continue
            domain, pending = resolve_properties(name, c.schema, c.properties, views.get)
            if domain != c.domain or pending != c.pending:
                c.domain, c.pending = domain, pending
                dirty.append(c)
            views[name] = View.of_component(c)
        bulk.update(Component, dirty, ["domain", "pending"])
    return {c.name for c in dirty}


def must_resolve(graph, name, properties, schema):
    """Resolve a component's properties in `graph` (for validation and plans)."""

    def lookup(producer):
        return graph.view(producer)

    return resolve_properties(name, schema, properties, lookup)


def validation_errors(graph, name, schema, properties):
    """Subscription errors first; schema errors on the resolved document after."""
    errors = check_subscriptions(graph, name, properties)
    if errors:
        return errors
    entry = graph.entries.get(name)
    if entry is not None and entry.properties is properties and entry.schema == schema:
        resolved = graph.view(name)  # the change set's own row: resolved already
        domain, pending = resolved.domain, resolved.pending
    else:
        domain, pending = must_resolve(graph, name, properties, schema)
    sources = graph.sources_for(name, properties)
    known = known_values(graph, properties, pending, sources)
    return resolved_schema_errors(schema, properties, domain, pending, known, sources)


def resolved_schema_errors(schema, properties, domain, pending, known=None, sources=None):
    """Schema errors of the document AWS will get: every subscription that has a value is
    checked as that value, one still pending as what is known of it (`known`, from
    known_values) or else as a subscription (checked by shape only). `sources`:
    find_sources(properties), when known."""

    known = known or {}
    document = jsondiff.json_copy(properties)
    sources = find_sources(properties) if sources is None else sources
    resolved = [s for s in sources if s.target not in pending or s.target in known]
    for source in resolved:
        if source.target in known:
            value = known[source.target]
        else:
            value = pointers.resolve(domain, source.target) if source.target else domain
        if source.target:
            pointers.set_value(document, pointers.split(source.target), jsondiff.json_copy(value))
        else:
            document = jsondiff.json_copy(value)
    errors = validate_properties(schema, document)
    for error in errors:
        feeding = next((s for s in resolved if pointers.is_prefix(s.target, error["path"])), None)
        if feeding is not None:
            error["message"] += f" (the value of {feeding.component}{feeding.path})"
    return errors


def raise_if_errors(name, errors):
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationError(f"{name}{first['path']}: {first['message']}{more}", errors=errors)


def derived_secret_paths(graph, name, _reading=frozenset(), within=None):
    """Pointers in `name`'s properties (and its resolved domain) whose value derives from a
    producer's secret: a subscription to a value the producer's pages mask (by name, by
    value, write-only, or itself derived), and a string template's rendered text when one
    of its Variables is secret. Secrecy travels with the value to every page that shows it.
    `within`: only the pointers at, above or below that one (what a consumer reads)."""
    # Many consumers read the same producers: remember each answer for this view (HEAD has
    # no cycles, so an answer does not depend on the chain that asked for it).
    known = graph.__dict__.setdefault("_derived_secret_paths", {})
    if (name, within) not in known:
        known[name, within] = _derived_secret_paths(graph, name, _reading, within)
    return list(known[name, within])


def _related(pointer, within):
    return within is None or pointers.is_prefix(pointer, within) or pointers.is_prefix(within, pointer)


def _derived_secret_paths(graph, name, _reading, within):
    properties = graph.properties_of(name)
    if not isinstance(properties, dict):
        return []
    sources = [s for s in graph.sources_of(name) if _related(s.target, within)]
    graph.head_components(sorted({s.component for s in sources if s.error is None and s.root != "si"}))
    paths = [s.target for s in sources if _reads_a_secret(graph, s, _reading | {name})]
    if not (_related("/Rendered", within) or _related("/Value", within)):
        return paths
    view = graph.view(name)
    if view is not None and view.schema == STRING_TEMPLATE:
        variables = (view.domain or {}).get("Variables")
        secret_variables = (
            paths if within is None else derived_secret_paths(graph, name, _reading, "/Variables")
        )
        hidden = write_only_for(view.schema) + secret_variables
        if isinstance(variables, dict) and mask_at(variables, "/Variables", hidden, view.domain) != variables:
            paths += ["/Rendered", "/Value"]  # the domain's and the resource value's text
    return paths


def _reads_a_secret(graph, source, reading):
    if source.error or source.root == "si" or source.component in reading:
        return False
    producer = graph.view(source.component)
    if producer is None:
        return False
    document = producer.domain if source.root == "domain" else producer.resource_value
    try:
        value = pointers.resolve(document or {}, source.subpath)
    except pointers.Missing:
        return False
    hidden = write_only_for(producer.schema) + derived_secret_paths(
        graph, source.component, reading, within=source.subpath
    )
    return mask_at(value, source.subpath, hidden, document) != value
