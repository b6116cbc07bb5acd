"""Workspaces: creating them, members, importing and exporting specs."""

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from . import audit, changesets
from .errors import NotFound, ValidationError
from .models import MAX_APPLY_CONCURRENCY, Component, Membership, Role, Workspace
from .spec import ComponentSpec, Spec, dump_spec


def get_workspace(slug):
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise NotFound(f"No workspace {slug!r}.")
    return workspace


def create_workspace(
    slug, name=None, region="us-east-1", approvals_required=1, actor=None, apply_concurrency=None
):
    if approvals_required < 0:
        raise ValidationError("approvals-required must be 0 or more.")
    if apply_concurrency is not None and not 1 <= apply_concurrency <= MAX_APPLY_CONCURRENCY:
        raise ValidationError(f"apply-concurrency must be between 1 and {MAX_APPLY_CONCURRENCY}.")
    if slugify(slug) != slug:
        raise ValidationError(f"{slug!r} is not a valid slug: use lower-case letters, digits and dashes.")
    try:
        with transaction.atomic():
            ws = Workspace.objects.create(
                slug=slug,
                name=name or slug,
                region=region,
                approvals_required=approvals_required,
                apply_concurrency=apply_concurrency,
            )
            audit.record(
                "workspace.created",
                actor=actor,
                workspace=ws,
                target=slug,
                after={
                    "name": ws.name,
                    "region": region,
                    "approvals_required": approvals_required,
                    "apply_concurrency": apply_concurrency,
                },
            )
    except IntegrityError:
        raise ValidationError(f"A workspace {slug!r} already exists.") from None
    return ws


def add_member(workspace, user, role, actor=None):
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}: choose one of {', '.join(Role.values)}.")
    with transaction.atomic():
        member, created = Membership.objects.get_or_create(
            workspace=workspace, user=user, defaults={"role": role}
        )
        before = None if created else {"role": member.role}
        member.role = role
        member.save()
        audit.record(
            "workspace.member_set",
            actor=actor,
            workspace=workspace,
            target=user.username,
            before=before,
            after={"role": role},
        )
    return member


def describe(workspace):
    components = list(
        Component.objects.filter(workspace=workspace).values_list("name", "schema", "resource_status")
    )
    return {
        "slug": workspace.slug,
        "name": workspace.name,
        "region": workspace.region,
        "approvals_required": workspace.approvals_required,
        "apply_concurrency": workspace.apply_concurrency or settings.PORTAL_APPLY_CONCURRENCY,
        "head_version": workspace.head_version,
        "members": [
            {"user": m.user.username, "role": m.role}
            for m in workspace.memberships.select_related("user").order_by("user__username")
        ],
        "components": [{"name": n, "schema": s, "resource_status": st} for n, s, st in components],
        "open_change_sets": list(
            workspace.change_sets.filter(merged_version=None)
            .exclude(status__in=["abandoned", "applied"])
            .values("id", "name", "status")
        ),
    }


def export_spec(workspace):
    spec = Spec(
        components=[
            ComponentSpec(name=c.name, schema=c.schema, properties=c.properties)
            for c in Component.objects.filter(workspace=workspace).order_by("name")
        ],
        workspace={
            "name": workspace.name,
            "slug": workspace.slug,
            "region": workspace.region,
            "approvals_required": workspace.approvals_required,
        },
    )
    return dump_spec(spec)


def import_spec(workspace, user, spec, name="import"):
    """Load a spec into HEAD through a change set that is merged at once (audited).

    The merge checks what HEAD becomes (subscriptions, cycles, resolved values): the spec
    is checked once, there, and refused as a spec, problems in the order of its components."""
    with transaction.atomic():
        cs = changesets.create_change_set(workspace, user, (spec.change_set or {}).get("name") or name)
        changesets.apply_spec(cs, user, spec, validate=False)
        try:
            changesets.merge(cs, user)
        except ValidationError as exc:
            raise _spec_refused(spec, exc.errors) from None
        cs.refresh_from_db()
    return cs


def _spec_refused(spec, errors):
    order = {c.name: i for i, c in enumerate(changesets.spec_components(spec))}
    errors = sorted(errors, key=lambda e: order.get(e["path"].split("/", 1)[0], len(order)))
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationError(
        f"The spec was not applied: {first['path']}: {first['message']}{more}", errors=errors
    )
