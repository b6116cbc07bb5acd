"""The component editor inside a change set: choose a type, edit properties as fields
(or JSON), add subscriptions; delete or revert a component. Nothing is saved half: an
invalid edit changes nothing and the form comes back with the input and the errors."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import changesets, pages
from portal.errors import PortalError, ValidationError
from portal.forms import ComponentEditorForm
from portal.models import EntryOp, Role
from portal.schemas import get_schema, search_types
from portal.secrets import literal_secret_warnings

from .changesets import detail_url
from .common import get_change_set, get_workspace, perform


def _type_schema(name):
    try:
        return get_schema(name)
    except ValidationError:
        return None


def _save(request, cs, form, name, schema, create_only=False):
    """Validate the form, then one engine call; returns (redirect or None, HTTP status)."""
    properties = form.properties() if form.is_valid() else None
    if properties is None:
        return None, 400
    try:
        changesets.upsert_component(
            cs, request.user, name, schema, properties, form.replace_value(), create_only=create_only
        )
    except ValidationError as exc:
        form.add_engine_errors(exc)
        return None, 400
    except PortalError as exc:
        form.add_error(None, exc.message)
        return None, exc.status
    messages.success(request, f"{name} saved in change set #{cs.pk}.")
    for warning in literal_secret_warnings(name, properties, form.write_only, before=form.stored):
        messages.warning(request, warning)
    if "continue" in request.POST:
        return redirect(reverse("component-edit", args=[cs.workspace.slug, cs.pk, name])), 302
    return redirect(detail_url(cs, f"c-{name}")), 302


def _page(request, cs, form, schema, status=200, name=None):
    context = {
        "workspace": cs.workspace,
        "cs": cs,
        "form": form,
        "schema": schema,
        "name": name,
        "type_schema": _type_schema(schema),
        "names": pages.component_names(cs),
    }
    return render(request, "portal/editor.html", context, status=status)


def _choose_type(request, cs, query):
    """Step one of a new component: the type search (an exact unknown type says so)."""
    context = {
        "workspace": cs.workspace,
        "cs": cs,
        "query": query,
        "unknown": bool(request.GET.get("type") or request.POST.get("schema")),
        "types": search_types(query, limit=25),
        "name": request.GET.get("name", ""),
    }
    return render(
        request, "portal/editor_type.html", context, status=400 if request.method == "POST" else 200
    )


@login_required
def component_new(request, slug, change_set_id):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    schema = (request.POST.get("schema") or request.GET.get("type") or request.GET.get("q") or "").strip()
    type_schema = _type_schema(schema) if schema else None
    if type_schema is None:
        return _choose_type(request, cs, schema)
    mode = request.POST.get("mode") or request.GET.get("mode") or "fields"
    form = ComponentEditorForm(
        type_schema, {}, is_new=True, mode=mode, data=request.POST if request.method == "POST" else None
    )
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if name and pages.component_in_change_set(cs, name) is not None:
            form.is_valid()
            form.add_error("name", f"A component named {name} already exists; edit it instead.")
            return _page(request, cs, form, schema, 400)
        response, status = _save(request, cs, form, name, schema, create_only=True)
        return response or _page(request, cs, form, schema, status)
    form.fields["name"].initial = request.GET.get("name", "")
    return _page(request, cs, form, schema)


@login_required
def component_edit(request, slug, change_set_id, name):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    current = pages.component_in_change_set(cs, name)
    if current is None:
        raise Http404(f"No component {name!r} in change set #{cs.pk}.")
    mode = request.POST.get("mode") or request.GET.get("mode") or "fields"
    entry = cs.entries.filter(name=name).first()
    form = ComponentEditorForm(
        _type_schema(current.schema),
        current.properties,
        is_new=False,
        mode=mode,
        can_replace=current.op != EntryOp.ADD,
        replace=bool(entry and entry.replace),
        data=request.POST if request.method == "POST" else None,
    )
    if request.method == "POST":
        response, status = _save(request, cs, form, name, None)
        return response or _page(request, cs, form, current.schema, status, name)
    return _page(request, cs, form, current.schema, name=name)


@login_required
def component_pick(request, slug, change_set_id):
    """The change-set page's "edit a component" picker: on to that component's editor."""
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    name = request.GET.get("name", "").strip()
    if pages.component_in_change_set(cs, name) is None:
        messages.error(request, f"There is no component {name!r} in change set #{cs.pk}.")
        return redirect(detail_url(cs, "diff"))
    return redirect("component-edit", slug, cs.pk, name)


@require_POST
@login_required
def component_delete(request, slug, change_set_id, name):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    return perform(
        request,
        detail_url(cs, "diff"),
        changesets.delete_component,
        cs,
        request.user,
        name,
        success=f"{name} will be deleted when the change set is applied.",
    )


@require_POST
@login_required
def component_revert(request, slug, change_set_id, name):
    cs = get_change_set(request, slug, change_set_id, Role.EDITOR)
    return perform(
        request,
        detail_url(cs, "diff"),
        changesets.revert_component,
        cs,
        request.user,
        name,
        success=f"{name} is as in HEAD again.",
    )


@login_required
def type_search(request, slug):
    """The htmx search over the schema registry's types."""
    get_workspace(request, slug)
    query = request.GET.get("q", "")
    context = {"types": search_types(query, limit=25), "query": query}
    return render(request, "portal/_type_results.html", context)


@login_required
def source_paths(request, slug, change_set_id):
    """The <option>s of the paths a subscription to a component can read."""
    cs = get_change_set(request, slug, change_set_id)
    component = request.GET.get("new_component", "").strip()
    paths = pages.source_paths(cs, component) if component else []
    return render(request, "portal/_source_paths.html", {"paths": paths, "component": component})
