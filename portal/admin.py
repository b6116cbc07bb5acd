import json

from django.contrib import admin
from django.db import models
from django.utils.html import format_html

from . import graph
from .models import (
    Approval,
    AuditEvent,
    ChangeSet,
    ChangeSetEntry,
    Component,
    Membership,
    Subscription,
    Workspace,
)
from .schemas import write_only_for
from .secrets import mask, mask_event_data


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the workflow may change: visible in admin, never edited there.

    Their JSON is shown masked, as the portal's pages show it: a superuser of one
    workspace reads no other workspace's secrets here."""

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self.masked_fields = {
            f.name: self._masked_display(f.name)
            for f in model._meta.fields
            if isinstance(f, models.JSONField)
        }

    def _masked_display(self, name):
        def display(obj):
            value = self.masked(obj, getattr(obj, name))
            return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, default=str))

        display.short_description = name.replace("_", " ")
        return display

    def masked(self, obj, value):
        schema = getattr(obj, "schema", None)
        return mask(value, write_only_for(schema) if isinstance(schema, str) else [])

    def get_fields(self, request, obj=None):
        return [self.masked_fields.get(f, f) for f in super().get_fields(request, obj)]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *self.masked_fields.values()]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    """Memberships are granted in the portal, which writes them into the audit log."""

    model = Membership
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "region",
        "approvals_required",
        "allow_private_http_checks",
        "apply_concurrency",
        "head_version",
    ]
    # Who may approve, and how many must: changed only through the portal, which audits it.
    readonly_fields = ["approvals_required", "head_version"]
    inlines = [MembershipInline]


@admin.register(Component)
class ComponentAdmin(ReadOnlyAdmin):
    list_display = ["name", "schema", "workspace", "resource_status", "resource_id"]
    list_filter = ["workspace", "resource_status"]
    search_fields = ["name", "schema", "resource_id"]

    def masked(self, obj, value):
        derived = graph.derived_secret_paths(graph.GraphView(obj.workspace), obj.name)
        return mask(value, write_only_for(obj.schema) + derived)


@admin.register(ChangeSet)
class ChangeSetAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "name",
        "workspace",
        "author",
        "status",
        "forked_from_version",
        "base_version",
        "created_at",
    ]
    list_filter = ["workspace", "status"]
    search_fields = ["name"]


@admin.register(ChangeSetEntry)
class ChangeSetEntryAdmin(ReadOnlyAdmin):
    list_display = ["change_set", "op", "name", "schema", "replace"]


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "change_set", "consumer_name", "target_path", "producer_name", "source_path"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "verb", "target", "workspace", "change_set"]
    list_filter = ["verb", "workspace"]
    search_fields = ["target", "verb"]

    def masked(self, obj, value):
        data = [d for d in (obj.before, obj.after) if isinstance(d, dict)]
        schema = next((d["schema"] for d in data if isinstance(d.get("schema"), str)), None)
        return mask_event_data(value, write_only_for(schema) if schema else [])


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "change_set", "user", "decision", "comment"]
    list_filter = ["decision"]
    search_fields = ["change_set__name", "user__username", "comment"]
