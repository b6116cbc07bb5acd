"""Deployments and build logs. Included by portal/urls.py with `path("", include("deployments.urls"))`."""

from django.urls import path

from . import views

app_name = "deployments"

WS = "workspaces/<slug:slug>/"
DEPLOY = WS + "deployments/"
LOGS = WS + "buildlogs/"

urlpatterns = [
    path(DEPLOY, views.deployments_home, name="index"),
    path(DEPLOY + "pipelines/<str:name>/", views.pipeline_detail, name="pipeline"),
    path(DEPLOY + "pipelines/<str:name>/run/", views.pipeline_run, name="pipeline-run"),
    path(DEPLOY + "pipelines/<str:name>/asl.json", views.pipeline_export, name="pipeline-export"),
    path(DEPLOY + "runs/<id:run_id>/", views.run_detail, name="run"),
    path(DEPLOY + "runs/<id:run_id>/live/", views.run_live, name="run-live"),
    path(
        DEPLOY + "runs/<id:run_id>/stages/<id:stage_id>/approve/", views.stage_approve, name="stage-approve"
    ),
    path(DEPLOY + "runs/<id:run_id>/stages/<id:stage_id>/reject/", views.stage_reject, name="stage-reject"),
    path(LOGS, views.buildlog_list, name="buildlogs-workspace"),
    path(LOGS + "new/", views.buildlog_create, name="buildlog-create"),
    path(LOGS + "<id:log_id>/", views.buildlog_detail, name="buildlog"),
    path(LOGS + "<id:log_id>.md", views.buildlog_markdown, name="buildlog-md"),
    path(LOGS + "<id:log_id>/notes/", views.buildlog_notes, name="buildlog-notes"),
    path("buildlogs/", views.buildlog_history, name="buildlogs"),
    # Panels of the portal's pages
    path(DEPLOY + "recent/", views.recent_deployments, name="recent"),
    path("deployments/failed/", views.failed_deployments, name="failed"),
    path(
        WS + "changesets/<id:change_set_id>/buildlogs/",
        views.changeset_buildlogs,
        name="changeset-buildlogs",
    ),
    path(WS + "components/<str:name>/buildlogs/", views.component_buildlogs, name="component-buildlogs"),
]
