"""Topology pages and downloads. Every view looks the workspace up through the user's
membership; the graph is built by topology.build and drawn by topology.dot."""

import shutil
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseNotModified
from django.shortcuts import render as render_page
from django.urls import reverse
from django.utils.safestring import mark_safe

from portal import inputs
from portal.access import change_set_for, workspace_for
from portal.models import Component

from . import dot, render
from .build import FADE, HIDE, INFRASTRUCTURE, KIND_LABELS, OTHERS, SERVICES, SHOW, VIEWS, build_graph

MAX_HOPS = 6
OTHERS_LABELS = {FADE: "Fade the rest", HIDE: "Hide the rest", SHOW: "Show all"}


def component_url(slug, name, change_set_id=None):
    """The component page (the one place that builds this link)."""
    url = f"/workspaces/{quote(slug, safe='')}/components/{quote(name, safe='')}/"
    return f"{url}?changeset={change_set_id}" if change_set_id else url


class BadParameter(Exception):
    pass


@dataclass
class Params:
    view: str = INFRASTRUCTURE
    change_set: object = None
    types: list = field(default_factory=list)
    focus: str = ""
    hops: int = 1
    others: str = FADE

    def query(self, **overrides):
        """The canonical query string for these parameters (with `overrides`)."""
        values = {
            "view": self.view,
            "changeset": self.change_set.pk if self.change_set else None,
            "type": self.types,
            "focus": self.focus,
            "hops": self.hops if self.focus else None,
            "others": self.others if self.change_set else None,
        }
        values.update(overrides)
        pairs = []
        for key in ("view", "changeset", "type", "focus", "hops", "others"):
            value = values.get(key)
            if (key, value) in (("view", INFRASTRUCTURE), ("others", FADE)):
                continue
            for item in value if isinstance(value, list) else [value]:
                if item not in (None, ""):
                    pairs.append((key, item))
        return ("?" + urlencode(pairs)) if pairs else ""


def _lookup(request, slug):
    """(workspace, Params) for this request; 404 for anything the user may not see."""
    workspace = workspace_for(request.user, slug)
    params = Params()
    view = request.GET.get("view") or INFRASTRUCTURE
    if view not in VIEWS:
        raise BadParameter(f"view must be {' or '.join(VIEWS)}, not {view!r}.")
    params.view = view
    change_set_id = (request.GET.get("changeset") or "").strip()
    if change_set_id:
        try:
            pk = inputs.parse_id(change_set_id)
        except ValueError:
            raise Http404("No such change set.") from None
        change_set = change_set_for(request.user, pk)
        if change_set.workspace_id != workspace.id:
            raise Http404(f"No change set {change_set_id} in {workspace.slug}.")
        params.change_set = change_set
    others = request.GET.get("others") or FADE
    if others not in OTHERS:
        raise BadParameter(f"others must be {' or '.join(OTHERS)}, not {others!r}.")
    params.others = others
    params.types = sorted({t.strip() for t in request.GET.getlist("type") if t.strip()})
    params.focus = (request.GET.get("focus") or "").strip()
    try:
        params.hops = min(MAX_HOPS, max(0, int(request.GET.get("hops") or 1)))
    except ValueError:
        params.hops = 1
    return workspace, params


def _dot_text(workspace, params):
    graph = build_graph(
        workspace,
        change_set=params.change_set,
        view=params.view,
        types=params.types,
        focus=params.focus or None,
        hops=params.hops,
        others=params.others,
    )
    cs_id = params.change_set.pk if params.change_set else None
    return graph, dot.to_dot(graph, lambda name: component_url(workspace.slug, name, cs_id))


def _bad_request(exc):
    return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


def graphviz_installed():
    return shutil.which("dot") is not None


@login_required
def page(request, slug):
    try:
        workspace, params = _lookup(request, slug)
    except BadParameter as exc:
        return _bad_request(exc)
    schemas = set(Component.objects.filter(workspace=workspace).values_list("schema", flat=True).distinct())
    names = list(Component.objects.filter(workspace=workspace).values_list("name", flat=True))
    if params.change_set is not None:
        for name, schema in params.change_set.entries.values_list("name", "schema"):
            schemas.add(schema)
            names.append(name)
    base = f"/workspaces/{quote(workspace.slug, safe='')}/topology"
    query = params.query()
    context = {
        "workspace": workspace,
        "params": params,
        "change_set": params.change_set,
        "views": [
            {
                "name": v,
                "label": v.capitalize(),
                "url": f"{base}/{params.query(view=v)}",
                "active": v == params.view,
            }
            for v in VIEWS
        ],
        "kinds": [
            {"value": k, "label": label, "checked": k in params.types} for k, label in KIND_LABELS.items()
        ],
        "schemas": [{"value": s, "checked": s in params.types} for s in sorted(schemas)],
        "names": sorted(set(names)),
        "fragment_url": reverse("topology-fragment", args=[workspace.slug]) + query,
        "downloads": [{"fmt": f, "url": f"{base}.{f}{query}"} for f in render.FORMATS],
        "dot_url": f"{base}.dot{query}",
        "clear_url": f"{base}/{params.query(type=[], focus='')}",
        "graphviz_installed": graphviz_installed(),
        "install_hint": render.INSTALL_HINT,
        "legend": dot.legend(),
        "others": [
            {
                "value": value,
                "label": label,
                "url": f"{base}/{params.query(others=value)}",
                "active": value == params.others,
            }
            for value, label in OTHERS_LABELS.items()
        ],
        "max_hops": MAX_HOPS,
        "services_view": params.view == SERVICES,
    }
    return render_page(request, "topology/page.html", context)


def _inline_svg(data):
    """Graphviz's SVG without the XML prolog and doctype, for embedding in HTML."""
    text = data.decode("utf-8")
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


@login_required
def fragment(request, slug):
    """The rendered SVG (or why there is none) for the page's htmx placeholder."""
    try:
        workspace, params = _lookup(request, slug)
    except BadParameter as exc:
        return _bad_request(exc)
    graph, dot_text = _dot_text(workspace, params)
    context = {
        "graph": graph,
        "dot_url": f"/workspaces/{quote(workspace.slug, safe='')}/topology.dot{params.query()}",
    }
    try:
        # Graphviz escapes every label, tooltip and URL it writes into the SVG.
        context["svg"] = mark_safe(_inline_svg(render.render(dot_text, "svg")))  # noqa: S308
    except render.GraphvizMissing as exc:
        context["missing"] = exc.message
    except render.RenderError as exc:
        context["error"] = str(exc)
    return render_page(request, "topology/_svg.html", context)


@login_required
def download(request, slug, fmt):
    try:
        workspace, params = _lookup(request, slug)
    except BadParameter as exc:
        return _bad_request(exc)
    _graph, dot_text = _dot_text(workspace, params)
    etag = f'"{render.cache_key(dot_text, fmt)}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return response
    try:
        data = render.render(dot_text, fmt)
    except render.GraphvizMissing as exc:
        return HttpResponse(exc.message, status=503, content_type="text/plain; charset=utf-8")
    except render.RenderError as exc:
        return HttpResponse(str(exc), status=500, content_type="text/plain; charset=utf-8")
    response = HttpResponse(data, content_type=render.CONTENT_TYPES[fmt])
    suffix = f"-{params.view}" if params.view != INFRASTRUCTURE else ""
    suffix += f"-cs{params.change_set.pk}" if params.change_set else ""
    response["Content-Disposition"] = f'inline; filename="{workspace.slug}-topology{suffix}.{fmt}"'
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    if fmt == "svg":
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
