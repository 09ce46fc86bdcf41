"""Shared base models: timestamps, the job-run row and the audit trail."""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models


class TimeStampedModel(models.Model):
    """Adds created and updated timestamps."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class EncryptedCredentialsMixin:
    """Write-only credentials of a model with ``credentials_ciphertext`` (a TextField) and
    ``credential_fields_set`` (a JSONField list): encrypted at rest by apps.core.secrets,
    only the names of the fields that are set are ever shown."""

    def set_credentials(self, values: dict) -> None:
        """Encrypts and stores the credential values (empty values are dropped)."""
        from apps.core import secrets

        cleaned = {name: value for name, value in values.items() if value not in (None, "")}
        self.credentials_ciphertext = secrets.encrypt_json(cleaned) if cleaned else ""
        self.credential_fields_set = sorted(cleaned)

    def get_credentials(self) -> dict:
        """The decrypted credentials; for the code that connects, never for display."""
        from apps.core import secrets

        return (
            secrets.decrypt_json(self.credentials_ciphertext) if self.credentials_ciphertext else {}
        )


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobRun(TimeStampedModel):
    """A long piece of work as a database row (DESIGN.md "Jobs are rows").

    The Celery task receives only the row's id and claims it with a conditional
    update (apps.core.jobs.claim), so a second delivery of the same message is a
    no-op. While running, the worker bumps ``heartbeat_at``; the reaper fails or
    re-queues rows whose heartbeat went stale. Concrete jobs subclass this.
    """

    status = models.CharField(
        max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    progress_total = models.PositiveIntegerField(default=0)
    progress_done = models.PositiveIntegerField(default=0)
    progress_note = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="A deferred run is not claimed before this time."
    )
    deferrals = models.PositiveSmallIntegerField(default=0)

    # How often the reaper may put a stale run back in the queue before failing it.
    MAX_ATTEMPTS = 3

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if self.status == JobStatus.SUCCEEDED else 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"


class AuditEntry(models.Model):
    """Who changed what, when: one row per create, update or delete of a tracked object.

    ``changes`` maps each changed field to ``[before, after]``; secrets never
    appear in it (only the fact that they changed).
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=10, choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id", "-created_at"])]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.actor_name or 'system'} {self.action} {self.object_repr}"
