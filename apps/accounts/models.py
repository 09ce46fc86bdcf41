"""Users, teams and API tokens."""

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.urls import reverse
from django.utils import timezone

from apps.core.models import TimeStampedModel


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer (stakeholder, read-only)"
    ENGINEER = "engineer", "Engineer"
    LEAD = "lead", "Lead"
    ADMIN = "admin", "Admin"


class Team(TimeStampedModel):
    """A delivery team; write rights on catalog objects follow their owner team."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def policy_team_id(self):
        return None  # teams are managed by admins only

    def get_absolute_url(self):
        return reverse("accounts:team_detail", args=[self.slug])


class User(AbstractUser):
    """A person (or a machine account) with one role and membership in teams."""

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    teams = models.ManyToManyField(Team, blank=True, related_name="members")

    AUDIT_EXCLUDE_FIELDS = ("password", "last_login", "groups", "user_permissions", "date_joined")

    @property
    def is_viewer(self) -> bool:
        return self.role == Role.VIEWER

    @property
    def is_portal_admin(self) -> bool:
        return self.role == Role.ADMIN or self.is_superuser

    @property
    def can_write(self) -> bool:
        return self.is_active and not self.is_viewer

    def policy_team_id(self):
        return None  # roles and memberships are managed by admins only

    def get_absolute_url(self):
        return reverse("accounts:user_list") + f"?q={self.username}"

    def team_ids(self) -> frozenset[int]:
        """The ids of the user's teams, read once per user object."""
        if not hasattr(self, "_team_ids"):
            self._team_ids = (
                frozenset(self.teams.values_list("pk", flat=True)) if self.pk else frozenset()
            )
        return self._team_ids


TOKEN_PREFIX = "pnt_"  # noqa: S105 - a public prefix, not a secret
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_DAYS = 365


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(TimeStampedModel):
    """A named API token acting with its user's rights; only its hash is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="unique_token_name_per_user")
        ]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @classmethod
    def issue(
        cls, *, user: User, name: str, days: int = DEFAULT_TOKEN_DAYS
    ) -> tuple["ApiToken", str]:
        """Creates a token and returns it with its key, which is shown once and never stored."""
        key = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            key_prefix=key[:12],
            key_hash=hash_token(key),
            expires_at=timezone.now() + timedelta(days=days),
        )
        return token, key
