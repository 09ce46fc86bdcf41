"""The permission policy, in one place for views, viewsets and forms.

- Everyone signed in may read the catalog.
- Viewers (stakeholders) may write nothing.
- Engineers and leads may change objects whose owner team is one of theirs.
- Admins may change everything, including estate-wide objects (environments, teams).

A model takes part by defining ``policy_team_id()`` (the owner team's id, or
None for admin-only objects) and a queryset with ``for_user``.
"""

from django.core.exceptions import PermissionDenied
from django.db import models


def can_change(user, obj) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_portal_admin:
        return True
    if user.is_viewer:
        return False
    team_id = obj.policy_team_id()
    return team_id is not None and team_id in user.team_ids()


def can_create_for_team(user, team_id: int | None) -> bool:
    """Whether the user may create an object owned by this team (None: admin-only)."""
    if not (user and user.is_authenticated and user.is_active) or user.is_viewer:
        return False
    if user.is_portal_admin:
        return True
    return team_id is not None and team_id in user.team_ids()


def require_change(user, obj) -> None:
    if not can_change(user, obj):
        raise PermissionDenied("You may not change this object.")


class PolicyQuerySet(models.QuerySet):
    """``for_user(user, "view" | "change")``: what a user may see or change. Deny by default."""

    # The lookup from this model to its owner team id; None for admin-only models.
    team_lookup: str | None = None

    def for_user(self, user, action: str = "view"):
        if not (user and user.is_authenticated and user.is_active):
            return self.none()
        if action == "view":
            return self.all()
        if action != "change":
            raise ValueError(f"unknown action {action!r}")
        if user.is_portal_admin:
            return self.all()
        if user.is_viewer or self.team_lookup is None:
            return self.none()
        return self.filter(**{f"{self.team_lookup}__in": user.team_ids()})
