"""Looking objects up through the user's workspace membership.

Every view, command and task that acts for a user goes through these helpers, so an
object of a workspace the user is not a member of is simply not found.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from .errors import NotFound, PermissionDenied
from .models import ChangeSet, Membership, Role, Workspace


def get_user(username):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise NotFound(f"No user named {username!r}.") from None


def membership(user, workspace):
    if not user or not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, workspace=workspace).first()


@dataclass(frozen=True)
class Seat:
    """What the user may do in a workspace, as the pages ask it."""

    name: str | None  # the member's role, None for anyone else
    is_editor: bool
    is_approver: bool
    is_admin: bool = False


def role_of(user, workspace):
    member = membership(user, workspace)
    return Seat(
        name=member.role if member else None,
        is_editor=bool(member and member.has_role(Role.EDITOR)),
        is_approver=bool(member and member.has_role(Role.APPROVER)),
        is_admin=bool(member and member.has_role(Role.ADMIN)),
    )


def require_role(user, workspace, role):
    """Return the membership if `user` has at least `role` in `workspace`, else raise."""
    member = membership(user, workspace)
    if member is None:
        raise NotFound(f"No workspace {workspace.slug!r} for {user}.")
    if not member.has_role(role):
        raise PermissionDenied(
            f"{user} is {member.role} in {workspace.slug}; this needs {Role(role).value} or above."
        )
    return member


def workspaces_for(user):
    return Workspace.objects.filter(memberships__user=user)


def workspace_for(user, slug, role=Role.VIEWER):
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise NotFound(f"No workspace {slug!r}.")
    require_role(user, workspace, role)
    return workspace


def change_set_for(user, change_set_id, role=Role.VIEWER):
    change_set = ChangeSet.objects.select_related("workspace", "author").filter(pk=change_set_id).first()
    if change_set is None:
        raise NotFound(f"No change set {change_set_id}.")
    try:
        require_role(user, change_set.workspace, role)
    except NotFound:
        raise NotFound(f"No change set {change_set_id}.") from None
    return change_set
