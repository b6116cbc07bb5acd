from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views
from .views import approvals, audit, changesets, components, editor, workspaces

WS = "workspaces/<slug:slug>/"
CS = WS + "changesets/<id:change_set_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Workspace
    path(WS, workspaces.workspace_home, name="workspace"),
    path(WS + "components/", components.component_list, name="components"),
    path(WS + "components/<str:name>/", components.component_detail, name="component"),
    path(WS + "components/<str:name>/edit-in/", components.component_edit_in, name="component-edit-in"),
    path(WS + "types/", editor.type_search, name="type-search"),
    path(WS + "audit/", audit.workspace_audit, name="audit"),
    path(WS + "settings/", workspaces.workspace_settings, name="workspace-settings"),
    # Change sets
    path(WS + "changesets/", changesets.changeset_list, name="changesets"),
    path(WS + "changesets/new/", changesets.changeset_create, name="changeset-create"),
    path(CS, changesets.changeset_detail, name="changeset"),
    path(CS + "describe/", changesets.changeset_describe, name="changeset-describe"),
    path(CS + "abandon/", changesets.changeset_abandon, name="changeset-abandon"),
    path(CS + "rebase/", changesets.changeset_rebase, name="changeset-rebase"),
    path(CS + "conflicts/resolve/", changesets.conflict_resolve, name="conflict-resolve"),
    path(CS + "audit/", audit.changeset_audit, name="changeset-audit"),
    # Component editor
    path(CS + "components/new/", editor.component_new, name="component-new"),
    path(CS + "components/edit/", editor.component_pick, name="component-pick"),
    path(CS + "components/<str:name>/edit/", editor.component_edit, name="component-edit"),
    path(CS + "components/<str:name>/delete/", editor.component_delete, name="component-delete"),
    path(CS + "components/<str:name>/revert/", editor.component_revert, name="component-revert"),
    path(CS + "source-paths/", editor.source_paths, name="source-paths"),
    # Approvals
    path(CS + "request-approval/", approvals.request_approval, name="request-approval"),
    path(CS + "approve/", approvals.approve, name="approve"),
    path(CS + "reject/", approvals.reject, name="reject"),
    # The apps above the domain serve their own pages and the panels the portal's pages load.
    path("", include("workers.urls")),
    path("", include("topology.urls")),
    path("", include("deployments.urls")),
    path("", include("notifications.urls")),
]
