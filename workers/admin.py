from django.contrib import admin

from portal.admin import ReadOnlyAdmin

from .models import Action, ApplyRun, WorkerHeartbeat


class ActionInline(admin.TabularInline):
    model = Action
    extra = 0
    fields = ["key", "kind", "status", "attempts", "worker", "error", "started_at", "finished_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApplyRun)
class ApplyRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "workspace",
        "change_set",
        "kind",
        "status",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "workspace"]
    search_fields = ["change_set__name", "error"]
    inlines = [ActionInline]


@admin.register(Action)
class ActionAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "key", "kind", "status", "attempts", "worker", "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["key", "component_name", "error"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["name", "last_seen", "started_at"]
