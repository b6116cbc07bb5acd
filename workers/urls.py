"""Applies and their panels. Included by portal/urls.py with `path("", include("workers.urls"))`."""

from django.urls import path

from . import views

WS = "workspaces/<slug:slug>/"
CS = WS + "changesets/<id:change_set_id>/"

urlpatterns = [
    path("applies/failed/", views.failed_applies, name="failed-applies"),
    path(WS + "queue/", views.action_queue, name="action-queue"),
    path(WS + "heartbeat/", views.heartbeat_banner, name="heartbeat"),
    path(
        WS + "components/id/<uuid:component_id>/actions/", views.component_actions, name="component-actions"
    ),
    path(CS + "apply/", views.apply_change_set, name="apply"),
    path(CS + "apply-panel/", views.apply_panel, name="apply-panel"),
    path(WS + "runs/<id:run_id>/progress/", views.run_progress, name="run-progress"),
    path(WS + "runs/<id:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path(WS + "actions/<id:action_id>/retry/", views.action_retry, name="action-retry"),
    path(WS + "actions/<id:action_id>/cancel/", views.action_cancel, name="action-cancel"),
    path(WS + "actions/<id:action_id>/replace/", views.action_replace, name="action-replace"),
]
