from django.urls import path

from . import views

urlpatterns = [
    path("workspaces/<slug:slug>/topology/", views.page, name="topology"),
    path("workspaces/<slug:slug>/topology/svg/", views.fragment, name="topology-fragment"),
    path("workspaces/<slug:slug>/topology.svg", views.download, {"fmt": "svg"}, name="topology-svg"),
    path("workspaces/<slug:slug>/topology.png", views.download, {"fmt": "png"}, name="topology-png"),
    path("workspaces/<slug:slug>/topology.dot", views.download, {"fmt": "dot"}, name="topology-dot"),
]
