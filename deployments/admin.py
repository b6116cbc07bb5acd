from django.contrib import admin

from portal.admin import ReadOnlyAdmin

from .models import BuildLog, LogLine, PipelineRun, StageRun


class StageRunInline(admin.TabularInline):
    model = StageRun
    extra = 0
    fields = [
        "position",
        "name",
        "kind",
        "status",
        "attempts",
        "worker",
        "error",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "workspace",
        "pipeline",
        "status",
        "trigger",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "workspace"]
    search_fields = ["pipeline", "error"]
    inlines = [StageRunInline]


@admin.register(LogLine)
class LogLineAdmin(ReadOnlyAdmin):
    list_display = ["at", "run", "stage", "level", "message"]
    list_filter = ["level"]
    search_fields = ["message"]


@admin.register(BuildLog)
class BuildLogAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "kind", "title", "status", "date", "author"]
    list_filter = ["kind", "status", "workspace"]
    search_fields = ["title", "search_text"]
