"""A workspace's notification targets and deliveries: the panel of the portal's settings
page. Included by portal/urls.py with `path("", include("notifications.urls"))`."""

from django.urls import path

from . import views

app_name = "notifications"

HERE = "workspaces/<slug:slug>/settings/notifications/"
TARGET = HERE + "targets/<id:target_id>/"

urlpatterns = [
    path(HERE, views.panel, name="panel"),
    path(HERE + "deliveries/", views.deliveries, name="deliveries"),
    path(HERE + "targets/", views.target_create, name="target-create"),
    path(TARGET, views.target_update, name="target-update"),
    path(TARGET + "enable/", views.target_enable, {"enabled": True}, name="target-enable"),
    path(TARGET + "disable/", views.target_enable, {"enabled": False}, name="target-disable"),
    path(TARGET + "delete/", views.target_delete, name="target-delete"),
    path(TARGET + "test/", views.target_test, name="target-test"),
]
