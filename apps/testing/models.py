"""Test cases, test runs and their results (the evidence)."""

from django.db import models
from django.urls import reverse

from apps.accounts.policy import PolicyQuerySet
from apps.catalog.models import ApiSpec, Endpoint, Environment, Interface
from apps.core.models import JobRun, TimeStampedModel


class TestKind(models.TextChoices):
    CONTRACT = "contract", "Contract"
    FUNCTIONAL = "functional", "Functional"
    NEGATIVE = "negative", "Negative"
    END_TO_END = "end_to_end", "End-to-end"


class Scenario(models.TextChoices):
    HAPPY_PATH = "happy_path", "Happy path"
    EDGE_CASE = "edge_case", "Edge case"
    FAILURE_MODE = "failure_mode", "Failure mode"


class HttpMethod(models.TextChoices):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


class TestCaseQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class TestCase(TimeStampedModel):
    """One automated request to an interface's endpoint and what its answer must be."""

    __test__ = False  # not a pytest class

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="test_cases")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=12, choices=TestKind.choices, default=TestKind.CONTRACT)
    scenario = models.CharField(
        max_length=14, choices=Scenario.choices, default=Scenario.HAPPY_PATH
    )
    description = models.TextField(blank=True)
    method = models.CharField(max_length=7, choices=HttpMethod.choices, default=HttpMethod.GET)
    path = models.CharField(
        max_length=500, help_text="Relative to the endpoint's base URL; {{variables}} allowed."
    )
    query = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.JSONField(null=True, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    send_credentials = models.BooleanField(
        default=True,
        help_text="Off for a negative case proving that a request without credentials is refused.",
    )
    expected_statuses = models.JSONField(
        default=list,
        blank=True,
        help_text="Empty: the status codes the spec documents for the operation.",
    )
    validate_schema = models.BooleanField(default=True)
    assertions = models.JSONField(default=list, blank=True)
    max_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)

    objects = TestCaseQuerySet.as_manager()

    class Meta:
        ordering = ["interface", "name"]
        constraints = [
            models.UniqueConstraint(fields=["interface", "name"], name="unique_test_case_name")
        ]

    def __str__(self):
        return f"{self.interface.code}: {self.name}"

    def get_absolute_url(self):
        return reverse("api:test-case-detail", args=[self.pk])

    def policy_team_id(self):
        return self.interface.owner_team_id


class TestRunQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class TestRun(JobRun):
    """A suite of test cases run against one environment of an interface: a job row."""

    __test__ = False

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="test_runs")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="test_runs")
    endpoint = models.ForeignKey(
        Endpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    spec = models.ForeignKey(
        ApiSpec, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tag = models.CharField(max_length=50, blank=True, help_text="Only cases with this tag.")
    case_ids = models.JSONField(
        default=list, blank=True, help_text="Only these cases (empty: all)."
    )
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)

    objects = TestRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.interface.code} run #{self.pk} in {self.environment.name}"

    def policy_team_id(self):
        return self.interface.owner_team_id


class Outcome(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ERRORED = "errored", "Errored"


class TestResult(models.Model):
    """The evidence of one case in one run: masked request and response, every check by name."""

    __test__ = False

    run = models.ForeignKey(TestRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(TestCase, null=True, on_delete=models.SET_NULL, related_name="results")
    case_name = models.CharField(max_length=200)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    checks = models.JSONField(default=list)
    request = models.JSONField(default=dict)
    response = models.JSONField(default=dict)
    elapsed_ms = models.FloatField(null=True)
    correlation_id = models.CharField(max_length=64)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "case_name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "case"], name="one_result_per_case_and_run")
        ]

    def __str__(self):
        return f"{self.case_name}: {self.outcome}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise EvidenceImmutable(
                "A test result is evidence: it is written once and never changed."
            )
        super().save(*args, **kwargs)


class EvidenceImmutable(Exception):
    pass


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Phase(models.TextChoices):
    DEV = "dev", "Dev"
    SIT = "sit", "SIT"
    UAT = "uat", "UAT"
    PROD = "prod", "Prod"


class DefectStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"


class DefectQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class Defect(TimeStampedModel):
    """A defect found by a test, linked back to the evidence that shows it."""

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="defects")
    result = models.ForeignKey(
        TestResult, null=True, blank=True, on_delete=models.SET_NULL, related_name="defects"
    )
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    phase_found = models.CharField(max_length=5, choices=Phase.choices, default=Phase.SIT)
    status = models.CharField(
        max_length=12, choices=DefectStatus.choices, default=DefectStatus.OPEN, db_index=True
    )
    correlation_id = models.CharField(max_length=64, blank=True)
    expected = models.TextField(blank=True)
    actual = models.TextField(blank=True)
    payload_sample = models.JSONField(
        null=True, blank=True, help_text="Masked, as stored in the evidence."
    )
    description = models.TextField(blank=True)
    raised_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = DefectQuerySet.as_manager()

    AUDIT_EXCLUDE_FIELDS = ("payload_sample",)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"DEF-{self.pk}: {self.title}"

    def get_absolute_url(self):
        return reverse("testing:defect_detail", args=[self.pk])

    def policy_team_id(self):
        return self.interface.owner_team_id
