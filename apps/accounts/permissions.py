from rest_framework import permissions

from apps.accounts import policy


class PontisPermission(permissions.BasePermission):
    """Signed in to read; a writing role to write; the policy for each object."""

    message = "Your role does not allow this change."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return user.can_write

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        return policy.can_change(request.user, obj)


class OwnObjectPermission(permissions.BasePermission):
    """For objects that belong to the signed-in user (their API tokens): a writing role to write."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        return request.method in permissions.SAFE_METHODS or user.can_write
