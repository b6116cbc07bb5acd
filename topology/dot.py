"""A TopologyGraph as Graphviz DOT text.

The text is deterministic (everything sorted, no timestamps) because its sha256 is the
render cache key. Every string is quoted and escaped, so component names may hold any
character. The same style tables feed the HTML legend of the page.
"""

import re
from urllib.parse import quote

from .build import ADDED, DELETED, FADE, HIDE, KIND_LABELS, MISSING, MODIFIED, REPLACED, UNCHANGED

FONT = "Helvetica,Arial,sans-serif"

# kind -> (shape, fill, extra style) ; the fill is used outside a change set.
KIND_STYLES = {
    "compute": ("box", "#dbe6ff", "rounded"),
    "load_balancer": ("box", "#e8dcff", "diagonals"),
    "networking": ("tab", "#e3f1e3", ""),
    "data": ("cylinder", "#ffeccc", ""),
    "discovery": ("ellipse", "#d4f3ee", ""),
    "pipeline": ("cds", "#f9dfef", ""),
    "template": ("note", "#eeeeee", ""),
    "other": ("box", "#ffffff", ""),
    MISSING: ("box", "#ffffff", "dashed"),
}
# status -> (border colour, pen width)
STATUS_STYLES = {
    "ok": ("#1d7a46", "1.5"),
    "pending": ("#d08700", "2"),
    "failed": ("#b3261e", "2.5"),
    "drifted": ("#7c3aed", "2.5"),
    "none": ("#8a93a6", "1"),
}
# diff -> (fill, border, label prefix, extra style)
DIFF_STYLES = {
    ADDED: ("#d9f2e3", "#1d7a46", "+ ", "bold"),
    MODIFIED: ("#fff1c2", "#a86400", "~ ", "bold"),
    REPLACED: ("#ffd9b8", "#c2410c", "-/+ ", "bold"),
    DELETED: ("#fde2e2", "#b3261e", "- ", "dashed"),
}
# edge kind -> colour (unchanged edges)
EDGE_COLOURS = {
    "subscription": "#5b6478",
    "uses": "#5b6478",
    "traffic": "#2456d3",
    "name": "#0f766e",
    "registration": "#0f766e",
}
# What a change set neither changes nor neighbours: (fill, border, text), in every format.
FADED = ("#f7f8fa", "#d5dae3", "#a3abbb")
EDGE_DIFF = {  # diff -> (colour, style, pen width, label prefix)
    ADDED: ("#1d7a46", "bold", "2", "+ "),
    DELETED: ("#b3261e", "dashed", "2", "- "),
}
CLUSTER_STYLES = {  # kind -> (border, fill, title)
    "vpc": ("#4f8a5b", "#f5faf5", "VPC"),
    "ecs": ("#3d5fbf", "#f4f7ff", "ECS cluster"),
    "lb": ("#7047c2", "#f8f5ff", "Load balancer"),
}
# Above LARGE_GRAPH nodes, trade some beauty for layout time; above HUGE_GRAPH, more so.
# dot keeps its clusters and ranks either way (sfdp was barely faster and drops clusters).
# Measured by bench/topology.py: 1,000 components render in ~0.5 s with these, ~1.5 s without.
LARGE_GRAPH = 250
LARGE_GRAPH_ATTRS = {
    # Straight edges: spline routing around clusters is slow on big graphs.
    "splines": "line",
    # Fewer crossing-minimisation and network-simplex (ranking, x-position) iterations.
    "mclimit": "0.3",
    "nslimit": "2",
    "nslimit1": "2",
    "searchsize": "10",
    "remincross": "false",
}
HUGE_GRAPH = 1500
HUGE_GRAPH_ATTRS = {**LARGE_GRAPH_ATTRS, "mclimit": "0.1", "nslimit": "0.2", "nslimit1": "0.5"}
MAX_LABEL_LINES = 4
# Label lines longer than this wrap after a separator: the demo's names and property paths
# made the infrastructure graph three times as wide as a screen.
WRAP = 24
_WRAP_PIECE = re.compile(r"[^-.:/]+[-.:/]*|[-.:/]+")
SHAPE_NAMES = {  # (shape, extra style) -> words for the HTML legend
    ("box", "rounded"): "rounded box",
    ("box", "diagonals"): "box with cut corners",
    ("tab", ""): "folder",
    ("cylinder", ""): "cylinder",
    ("ellipse", ""): "ellipse",
    ("cds", ""): "arrow",
    ("note", ""): "note",
    ("box", ""): "box",
}


def escape(text):
    """A DOT double-quoted string (also fine as an escString: backslashes are literal)."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def safe_url(url):
    """Graphviz (2.43) writes URLs into SVG attributes unescaped: percent-encode quotes,
    angle brackets, ampersands, spaces and controls so a link cannot break out."""
    return quote(str(url), safe="/:?=#%-._~,;+@!$()*[]") if url else url


def wrap(text, width=WRAP):
    """`text` as lines of about `width` characters: words first, then a word too long for
    a line after a '-', '.', ':' or '/', in parts of about equal length
    ("sandbox-tonys-", "chips-api-service")."""
    lines = []
    for word in str(text).split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.extend(_split_word(word, width))
    return [line for line in lines if line] or [""]


def _split_word(word, width):
    if len(word) <= width:
        return [word]
    target = len(word) / -(-len(word) // width)
    parts = [""]
    for piece in _WRAP_PIECE.findall(word):
        part = parts[-1]
        if part and len(part) + len(piece) - target > target - len(part):
            parts.append(piece)
        else:
            parts[-1] = part + piece
    return parts


def _wrapped(lines, prefix=""):
    """Every line wrapped; `prefix` (a diff mark such as "~ ") put before the first."""
    out = [part for line in lines for part in wrap(line)]
    if out and prefix:
        out[0] = prefix + out[0]
    return out


def _lines(lines):
    return '"' + "\\n".join(escape(line)[1:-1] for line in lines) + '"'


def _attrs(pairs):
    out = []
    for key, value in pairs:
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple):
            out.append(f"{key}={_lines(value)}")
        else:
            out.append(f"{key}={escape(value)}")
    return "[" + ", ".join(out) + "]"


def _style(*parts):
    return ",".join(p for p in parts if p)


def node_attrs(node, url, diff_mode):
    shape, fill, extra = KIND_STYLES.get(node.kind, KIND_STYLES["other"])
    border, pen = STATUS_STYLES.get(node.status, STATUS_STYLES["none"])
    label = [node.name]
    prefix = ""
    if node.schema:
        label.append(node.schema)
    label.extend(node.detail)
    if node.kind == MISSING:
        label.append("(no such component)")
    if node.status != "none":
        label.append(f"[{node.status}]")
    font = "#1d2433"
    peripheries = None
    style = _style(extra, "filled")
    if diff_mode:
        fill = "#ffffff"
        if node.diff in DIFF_STYLES:
            fill, border, prefix, diff_style = DIFF_STYLES[node.diff]
            style = _style(extra, "filled", diff_style)
            pen = "2"
            if node.diff == REPLACED:
                peripheries = "2"
            if node.diff == DELETED:
                font = "#b3261e"
        else:
            font = "#5b6478"
    if node.faded:
        fill, border, font = FADED
        pen = "1"
    tooltip = [f"{node.name} ({node.schema or 'unknown component'})", f"status: {node.status}"]
    if node.drift:
        tooltip.append(f"drift: {node.drift} propert{'y' if node.drift == 1 else 'ies'}")
    if diff_mode:
        tooltip.append(f"change: {node.diff}")
    classes = ["changed" if diff_mode and node.diff != UNCHANGED else "", "faded" if node.faded else ""]
    return [
        ("label", _wrapped(label, prefix)),
        ("shape", shape),
        ("style", style),
        ("fillcolor", fill),
        ("color", border),
        ("penwidth", pen),
        ("fontcolor", font),
        ("peripheries", peripheries),
        ("tooltip", tooltip),
        ("URL", safe_url(url) if node.kind != MISSING else None),
        ("target", "_top" if url and node.kind != MISSING else None),
        ("class", " ".join(c for c in classes if c)),
    ]


def _edge_groups(edges):
    """Parallel edges of one kind and diff state become one edge with several labels."""
    groups = {}
    for e in edges:
        groups.setdefault((e.producer, e.consumer, e.kind, e.diff, e.faded), []).append(e.label)
    return sorted(groups.items())


def edge_attrs(producer, consumer, kind, diff, labels, faded=False):
    colour = EDGE_COLOURS.get(kind, EDGE_COLOURS["subscription"])
    font = None
    style, pen, prefix = ("dashed" if kind == "name" else None), None, ""
    if diff in EDGE_DIFF:
        colour, style, pen, prefix = EDGE_DIFF[diff]
    if faded:
        _fill, colour, font = FADED
    labels = sorted(set(labels))
    shown = labels[:MAX_LABEL_LINES]
    if len(labels) > MAX_LABEL_LINES:
        shown.append(f"+{len(labels) - MAX_LABEL_LINES} more")
    tooltip = [f"{producer} -> {consumer}", *labels]
    if diff != UNCHANGED:
        tooltip.append(f"change: {diff}")
    return [
        ("label", [part for line in shown for part in _wrapped([line], prefix)]),
        ("color", colour),
        ("fontcolor", font or colour),
        ("style", style),
        ("penwidth", pen),
        ("tooltip", tooltip),
        ("class", "faded" if faded else None),
    ]


def _cluster_lines(cluster, members, children, url_for_component, diff_mode, indent):
    border, fill, _title = CLUSTER_STYLES.get(cluster.kind, ("#8a93a6", "#ffffff", ""))
    style = "rounded,filled"
    label = cluster.label
    if diff_mode and cluster.diff in DIFF_STYLES:
        _fill, border, prefix, diff_style = DIFF_STYLES[cluster.diff]
        style = _style("rounded,filled", diff_style)
        label = prefix + label
    font = border
    if cluster.faded:
        fill, border, font = FADED
    pad = "  " * indent
    out = [f"{pad}subgraph {escape('cluster_' + cluster.id)} {{"]
    for key, value in _attrs_list(
        [
            ("label", label),
            ("style", style),
            ("color", border),
            ("fillcolor", fill),
            ("fontcolor", font),
            ("tooltip", cluster.label),
            ("URL", safe_url(url_for_component(cluster.component)) if url_for_component else None),
            ("class", "faded" if cluster.faded else None),
        ]
    ):
        out.append(f"{pad}  {key}={value};")
    for child in children.get(cluster.id, []):
        out.extend(_cluster_lines(child, members, children, url_for_component, diff_mode, indent + 1))
    for node in members.get(cluster.id, []):
        out.append(f"{pad}  {escape(node.name)};")
    out.append(f"{pad}}}")
    return out


def _attrs_list(pairs):
    return [(k, escape(v)) for k, v in pairs if v not in (None, "")]


def _legend(indent="  "):
    out = [
        f"{indent}subgraph {escape('cluster___legend__')} {{",
        f'{indent}  label="Legend"; style="rounded"; color="#c0c6d4"; fontcolor="#5b6478"; fontsize=10;',
        f'{indent}  node [shape=box, style="rounded,filled", fontsize=9, width=0, height=0];',
    ]
    for state in (ADDED, MODIFIED, REPLACED, DELETED):
        fill, border, prefix, diff_style = DIFF_STYLES[state]
        node_id = escape(f"__legend__/{state}")
        attrs = [
            ("label", f"{prefix}{state}"),
            ("style", _style("rounded,filled", diff_style)),
            ("fillcolor", fill),
            ("color", border),
            ("penwidth", "2"),
            ("peripheries", "2" if state == REPLACED else None),
            ("class", "legend"),
        ]
        out.append(f"{indent}  {node_id} {_attrs(attrs)};")
    for state in (ADDED, DELETED):
        colour, style, pen, prefix = EDGE_DIFF[state]
        a, b = escape(f"__legend__/{state}-edge-a"), escape(f"__legend__/{state}-edge-b")
        out.append(f'{indent}  {a} [shape=point, width=0.06, color="{colour}", class="legend"];')
        out.append(f'{indent}  {b} [shape=point, width=0.06, color="{colour}", class="legend"];')
        attrs = [("label", f"{prefix}{state} edge"), ("color", colour), ("fontcolor", colour)]
        attrs += [("style", style), ("penwidth", pen)]
        out.append(f"{indent}  {a} -> {b} {_attrs(attrs)};")
    out.append(f"{indent}}}")
    return out


def title(graph):
    parts = [graph.workspace, f"{graph.view} view"]
    if graph.change_set is not None:
        parts.append(f"change set #{graph.change_set}")
    if graph.others == FADE:
        parts.append("its changes and their neighbours, the rest faded")
    elif graph.others == HIDE:
        parts.append("only its changes and their neighbours")
    if graph.focus:
        parts.append(f"around {graph.focus} ({graph.hops} hop{'s' if graph.hops != 1 else ''})")
    if graph.types:
        parts.append("types: " + ", ".join(graph.types))
    return " · ".join(parts)


def to_dot(graph, url_for_component=None):
    """DOT text for `graph`. `url_for_component(name)` gives each node's link (or None)."""
    diff_mode = graph.change_set is not None
    lines = ["digraph topology {"]
    graph_attrs = [
        ("rankdir", "LR"),
        ("fontname", FONT),
        ("fontsize", "12"),
        ("labelloc", "t"),
        ("labeljust", "l"),
        ("label", [title(graph), graph.message] if graph.message else title(graph)),
        ("nodesep", "0.25"),
        ("ranksep", "0.4"),
        ("newrank", "true"),
        ("bgcolor", "white"),
        ("tooltip", title(graph)),
    ]
    if len(graph.nodes) > HUGE_GRAPH:
        graph_attrs.extend(sorted(HUGE_GRAPH_ATTRS.items()))
    elif len(graph.nodes) > LARGE_GRAPH:
        graph_attrs.extend(sorted(LARGE_GRAPH_ATTRS.items()))
    for key, value in graph_attrs:
        lines.append(f"  {key}={_lines(value) if isinstance(value, list) else escape(value)};")
    lines.append(
        f'  node [fontname="{FONT}", fontsize=10, shape=box, style="filled", fillcolor="white", '
        'margin="0.12,0.05", color="#8a93a6"];'
    )
    lines.append(f'  edge [fontname="{FONT}", fontsize=8, arrowsize=0.7, color="#5b6478"];')

    members, children = {}, {}
    for node in graph.nodes:
        members.setdefault(node.cluster, []).append(node)
    known = {c.id for c in graph.clusters}
    for cluster in graph.clusters:
        parent = cluster.parent if cluster.parent in known else None
        children.setdefault(parent, []).append(cluster)

    for node in graph.nodes:
        url = url_for_component(node.name) if url_for_component else None
        lines.append(f"  {escape(node.name)} {_attrs(node_attrs(node, url, diff_mode))};")
    for cluster in children.get(None, []):
        lines.extend(_cluster_lines(cluster, members, children, url_for_component, diff_mode, 1))
    for (producer, consumer, kind, diff, faded), labels in _edge_groups(graph.edges):
        attrs = edge_attrs(producer, consumer, kind, diff, labels, faded)
        lines.append(f"  {escape(producer)} -> {escape(consumer)} {_attrs(attrs)};")
    if diff_mode and graph.has_diff:
        lines.extend(_legend())
    lines.append("}")
    return "\n".join(lines) + "\n"


def legend():
    """The style tables as rows for the HTML legend: kinds, statuses, changes."""
    return {
        "kinds": [
            {
                "kind": k,
                "label": KIND_LABELS[k],
                "shape": SHAPE_NAMES.get(KIND_STYLES[k][::2], ""),
                "fill": KIND_STYLES[k][1],
            }
            for k in KIND_LABELS
        ],
        "statuses": [{"status": s, "colour": c, "width": w} for s, (c, w) in STATUS_STYLES.items()],
        "changes": [
            {"state": s, "fill": f, "colour": b, "prefix": p.strip(), "style": st}
            for s, (f, b, p, st) in DIFF_STYLES.items()
        ],
        "faded": {"fill": FADED[0], "colour": FADED[1]},
        "edges": [
            {"kind": "traffic", "colour": EDGE_COLOURS["traffic"], "label": "traffic (services view)"},
            {"kind": "name", "colour": EDGE_COLOURS["name"], "label": "discovery name / registration"},
            {"kind": "subscription", "colour": EDGE_COLOURS["subscription"], "label": "subscription"},
        ],
    }
