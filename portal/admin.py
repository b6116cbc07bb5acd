from django.contrib import admin

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


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the workflow may change: visible in admin, never edited there."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "region", "approvals_required", "head_version"]
    readonly_fields = ["head_version"]
    inlines = [MembershipInline]


@admin.register(Component)
class ComponentAdmin(ReadOnlyAdmin):
    list_display = ["name", "schema", "workspace", "resource_status", "resource_id"]
    list_filter = ["workspace", "resource_status"]
    search_fields = ["name", "schema", "resource_id"]


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


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "change_set", "user", "decision", "comment"]
    list_filter = ["decision"]
    search_fields = ["change_set__name", "user__username", "comment"]
