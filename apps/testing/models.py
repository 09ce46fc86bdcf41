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
    MANUAL = "manual", "Manual"


class Scenario(models.TextChoices):
    HAPPY_PATH = "happy_path", "Happy path"
    EDGE_CASE = "edge_case", "Edge case"
    FAILURE_MODE = "failure_mode", "Failure mode"


class BodyFormat(models.TextChoices):
    JSON = "json", "JSON"
    XML = "xml", "XML"
    TEXT = "text", "Plain text"


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
    body_format = models.CharField(
        max_length=4, choices=BodyFormat.choices, default=BodyFormat.JSON
    )
    body_text = models.TextField(
        blank=True,
        help_text="The request body for XML and plain-text cases; {{variables}} allowed.",
    )
    variables = models.JSONField(default=dict, blank=True)
    extract = models.JSONField(
        default=dict,
        blank=True,
        help_text="Variables taken from the response for the later steps: {name: JSONPath}.",
    )
    steps = models.JSONField(
        default=list,
        blank=True,
        help_text="Chained steps sent after the first request, each with its own request, "
        "expectations and extract (create, then read back by the id it returned).",
    )
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
    manual_steps = models.TextField(blank=True, help_text="Manual cases: what the tester does.")
    expected_result = models.TextField(
        blank=True, help_text="Manual cases: what the tester must see for a pass."
    )
    scripts = models.TextField(
        blank=True,
        help_text="Test scripts imported from a Postman collection, kept as text: never executed.",
    )

    objects = TestCaseQuerySet.as_manager()

    class Meta:
        ordering = ["interface", "name"]
        constraints = [
            models.UniqueConstraint(fields=["interface", "name"], name="unique_test_case_name")
        ]

    def __str__(self):
        return f"{self.interface.code}: {self.name}"

    def get_absolute_url(self):
        return reverse("testing:case_detail", args=[self.pk])

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
    is_manual = models.BooleanField(
        default=False, help_text="A tester's recorded outcome of manual cases, not a worker's run."
    )
    schedule = models.ForeignKey(
        "TestSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )

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
    steps = models.JSONField(
        default=list,
        blank=True,
        help_text="Chained cases: the masked request, response and checks of every step.",
    )
    notes = models.TextField(blank=True, help_text="Manual cases: what the tester observed.")
    recorded_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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


def evidence_upload_path(instance, filename):
    return f"evidence/{instance.result.run_id}/{instance.sha256[:16]}-{filename}"


class EvidenceFile(models.Model):
    """A file a tester attached to a manual result: a screenshot, a log, an export."""

    result = models.ForeignKey(TestResult, on_delete=models.CASCADE, related_name="files")
    file = models.FileField(upload_to=evidence_upload_path, max_length=300)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["result", "name"]

    def __str__(self):
        return self.name


class KnownFindingQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class KnownFinding(TimeStampedModel):
    """An accepted failure in an interface's baseline: it no longer turns a run red, a new one does.

    A failing check matches when its name equals ``check`` (blank: any check), the case is
    ``case`` (blank: any case) and ``contains`` (blank: anything) appears in the check's
    message or in one of its violations.
    """

    interface = models.ForeignKey(
        Interface, on_delete=models.CASCADE, related_name="known_findings"
    )
    case = models.ForeignKey(
        TestCase, null=True, blank=True, on_delete=models.CASCADE, related_name="known_findings"
    )
    check_name = models.CharField(max_length=60, blank=True)
    contains = models.CharField(max_length=300, blank=True)
    reason = models.TextField()
    accepted_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_on = models.DateField(
        null=True, blank=True, help_text="After this day the finding counts as a failure again."
    )

    objects = KnownFindingQuerySet.as_manager()

    class Meta:
        ordering = ["interface", "-created_at"]

    def __str__(self):
        return f"{self.interface.code}: {self.check_name or 'any check'} {self.contains!r}"

    def policy_team_id(self):
        return self.interface.owner_team_id


class TestScheduleQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class TestSchedule(TimeStampedModel):
    """Runs a suite of an interface against an environment on a cron schedule (via beat)."""

    __test__ = False

    interface = models.ForeignKey(
        Interface, on_delete=models.CASCADE, related_name="test_schedules"
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.CASCADE, related_name="test_schedules"
    )
    name = models.CharField(max_length=120)
    cron = models.CharField(
        max_length=120, help_text="Five fields: minute hour day-of-month month day-of-week (UTC)."
    )
    tag = models.CharField(max_length=50, blank=True, help_text="Only cases with this tag.")
    is_enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = TestScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["interface", "name"]
        constraints = [
            models.UniqueConstraint(fields=["interface", "name"], name="unique_schedule_name")
        ]

    def __str__(self):
        return f"{self.interface.code}: {self.name}"

    def policy_team_id(self):
        return self.interface.owner_team_id


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
