"""Data sources, reconciliation jobs and their runs.

A job compares a source dataset with a target dataset by key: did everything that left the
source arrive in the target, exactly once, unchanged? :mod:`apps.reconciliation.compare`
defines what "equal" means (normalisation, NULLs, duplicates) and the strategies that
compute it; :mod:`apps.reconciliation.readers` reads each kind of source.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from apps.accounts.models import Team
from apps.accounts.policy import PolicyQuerySet
from apps.catalog.models import Endpoint, Interface
from apps.core.fields import OrderedJSONField
from apps.core.models import EncryptedCredentialsMixin, JobRun, TimeStampedModel


class SourceKind(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"
    HTTP = "http", "HTTP API"
    FILE = "file", "Uploaded file (CSV or XLSX)"


SQL_KINDS = (SourceKind.POSTGRESQL, SourceKind.MYSQL, SourceKind.SQLITE)


class DataSourceQuerySet(PolicyQuerySet):
    team_lookup = "owner_team"


class DataSource(EncryptedCredentialsMixin, TimeStampedModel):
    """Where a side of a reconciliation reads its records.

    SQL sources: ``dsn`` without a password (``postgresql://reader@db.example:5432/erp``,
    ``mysql://reader@db:3306/crm``, ``sqlite:///path/to/file.db``); the password goes in the
    encrypted credentials. Every read runs in a read-only transaction with a statement
    timeout. HTTP sources read through a registered endpoint (its auth, egress rules and rate
    limit). File sources hold an uploaded CSV or XLSX file.
    """

    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="data_sources")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=12, choices=SourceKind.choices)
    description = models.TextField(blank=True)
    dsn = models.CharField(max_length=500, blank=True, help_text="SQL sources: without password.")
    credentials_ciphertext = models.TextField(blank=True, editable=False)
    credential_fields_set = models.JSONField(default=list, blank=True, editable=False)
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="data_sources"
    )
    file = models.FileField(upload_to="reconciliation/files/", blank=True, max_length=300)
    file_name = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)

    objects = DataSourceQuerySet.as_manager()

    AUDIT_SECRET_FIELDS = ("credentials_ciphertext",)
    AUDIT_EXCLUDE_FIELDS = ("credential_fields_set",)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner_team", "name"], name="unique_data_source_name")
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("reconciliation:source_detail", args=[self.pk])

    def policy_team_id(self):
        return self.owner_team_id

    @property
    def is_sql(self) -> bool:
        return self.kind in SQL_KINDS


class Window(models.TextChoices):
    NONE = "", "All records"
    YESTERDAY = "yesterday", "Changed yesterday (UTC)"
    LAST_24_HOURS = "last_24h", "Changed in the last 24 hours"
    LAST_7_DAYS = "last_7d", "Changed in the last 7 days"


class Strategy(models.TextChoices):
    AUTO = "auto", "Automatic"
    IN_DATABASE = "in_database", "In the database (both sides in one PostgreSQL database)"
    STREAMED = "streamed", "Streamed (any two sources)"


class ReconciliationJobQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class ReconciliationJob(TimeStampedModel):
    """A comparison of two datasets of an interface, by key.

    Each side is a data source plus ``*_dataset``: a table name or a read-only SELECT for
    SQL sources, a path below the endpoint's base URL for HTTP sources (records at
    ``*_options["records_path"]``, pages per ``*_options["pagination"]``), nothing for files.

    ``key_columns`` and ``compare_columns`` name source columns; ``column_mapping`` gives
    each its target column when the names differ (or comes from an approved mapping
    spec's copy rows). ``normalisation`` holds per-column rules: see
    :class:`apps.reconciliation.compare.ColumnRule`.
    """

    interface = models.ForeignKey(
        Interface, on_delete=models.CASCADE, related_name="reconciliation_jobs"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)

    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="+")
    source_dataset = models.TextField(blank=True)
    source_options = OrderedJSONField(default=dict, blank=True)
    target = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="+")
    target_dataset = models.TextField(blank=True)
    target_options = OrderedJSONField(default=dict, blank=True)

    key_columns = models.JSONField(default=list)
    compare_columns = models.JSONField(default=list, blank=True)
    column_mapping = OrderedJSONField(default=dict, blank=True)
    mapping_spec = models.ForeignKey(
        "mappings.MappingSpec", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    normalisation = OrderedJSONField(default=dict, blank=True)

    window = models.CharField(max_length=10, choices=Window.choices, blank=True)
    window_source_column = models.CharField(max_length=200, blank=True)
    window_target_column = models.CharField(max_length=200, blank=True)

    strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.AUTO)
    accuracy_target = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        default=Decimal("99.5"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Percent of source rows that must match.",
    )
    schedule_cron = models.CharField(max_length=100, blank=True, help_text="Cron in UTC.")
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_scheduled_for = models.DateTimeField(null=True, blank=True)

    objects = ReconciliationJobQuerySet.as_manager()

    class Meta:
        ordering = ["interface", "name"]
        constraints = [
            models.UniqueConstraint(fields=["interface", "name"], name="unique_recon_job_name")
        ]

    def __str__(self):
        return f"{self.interface.code} {self.name}"

    def get_absolute_url(self):
        return reverse("reconciliation:job_detail", args=[self.pk])

    def policy_team_id(self):
        return self.interface.owner_team_id


class ReconciliationRunQuerySet(PolicyQuerySet):
    team_lookup = "job__interface__owner_team"


class ReconciliationRun(JobRun):
    """One run of a job: a job row with the counts, samples and the report file."""

    job = models.ForeignKey(ReconciliationJob, on_delete=models.CASCADE, related_name="runs")
    strategy = models.CharField(max_length=12, choices=Strategy.choices, blank=True)
    scheduled = models.BooleanField(default=False)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)

    source_rows = models.BigIntegerField(default=0)
    target_rows = models.BigIntegerField(default=0)
    matched = models.BigIntegerField(default=0)
    mismatched = models.BigIntegerField(default=0)
    missing_in_target = models.BigIntegerField(default=0)
    unexpected_in_target = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(
        default=0, help_text="Keys on both sides, more than once on one: counted, not compared."
    )
    duplicate_source_keys = models.BigIntegerField(default=0)
    duplicate_source_rows = models.BigIntegerField(default=0)
    duplicate_target_keys = models.BigIntegerField(default=0)
    duplicate_target_rows = models.BigIntegerField(default=0)
    column_mismatches = models.JSONField(default=dict, blank=True)
    accuracy = models.DecimalField(max_digits=7, decimal_places=3, null=True, blank=True)
    accuracy_target = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("99.5"))
    met_target = models.BooleanField(null=True)
    samples = models.JSONField(default=dict, blank=True)
    report_file = models.CharField(max_length=300, blank=True)
    defect = models.ForeignKey(
        "testing.Defect",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reconciliation_runs",
    )
    peak_memory_bytes = models.BigIntegerField(null=True, blank=True)

    objects = ReconciliationRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.job} run {self.pk}"

    def get_absolute_url(self):
        return reverse("reconciliation:run_detail", args=[self.pk])

    def policy_team_id(self):
        return self.job.interface.owner_team_id
