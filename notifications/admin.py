from django.contrib import admin

from portal.admin import ReadOnlyAdmin

from .models import Delivery, Target


@admin.register(Target)
class TargetAdmin(ReadOnlyAdmin):
    """Targets change on the workspace's settings page, which audits it; here they are
    read with the URL masked and the secret left out."""

    list_display = ["name", "workspace", "kind", "shown_destination", "enabled", "updated_at"]
    list_filter = ["kind", "enabled", "workspace"]
    search_fields = ["name"]
    fields = [
        "workspace",
        "name",
        "kind",
        "shown_destination",
        "events",
        "enabled",
        "created_by",
        "created_at",
    ]
    readonly_fields = ["shown_destination"]

    @admin.display(description="destination")
    def shown_destination(self, obj):
        return obj.shown_destination


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "workspace",
        "target_name",
        "event",
        "status",
        "attempts",
        "response_code",
        "created_at",
    ]
    list_filter = ["status", "event", "workspace"]
    search_fields = ["target_name", "error"]
