"""The interface catalog: systems, environments, interfaces, endpoints and API specs."""

import hashlib
import os
import re
from pathlib import Path

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse

from apps.accounts.models import Team
from apps.accounts.policy import PolicyQuerySet
from apps.core.models import EncryptedCredentialsMixin, JobRun, TimeStampedModel


class SystemKind(models.TextChoices):
    SAAS = "saas", "SaaS"
    ON_PREM = "on_prem", "On-prem"
    CUSTOM_SERVICE = "custom_service", "Custom service"
    PARTNER = "partner", "Partner"
    DATA_PLATFORM = "data_platform", "Data platform"


class SystemQuerySet(PolicyQuerySet):
    team_lookup = "owner_team"

    def with_interface_count(self):
        """Annotates ``interface_count``: interfaces sending from or receiving into the system."""
        from apps.core.queries import related_count

        return self.annotate(
            interface_count=related_count(Interface, "source_system")
            + related_count(Interface, "target_system")
        )


class System(TimeStampedModel):
    """An application at one end of an interface (CRM, ERP, HRIS, a partner…)."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=20, choices=SystemKind.choices)
    business_owner = models.CharField(max_length=120, blank=True)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="systems")
    description = models.TextField(blank=True)

    objects = SystemQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("catalog:system_detail", args=[self.pk])

    def policy_team_id(self):
        return self.owner_team_id


class EnvironmentQuerySet(PolicyQuerySet):
    team_lookup = None  # estate-wide: admins only


class Environment(TimeStampedModel):
    """A stage of the promotion path (Dev → Test → UAT → Prod) with its egress allowlist."""

    name = models.CharField(max_length=40, unique=True)
    slug = models.SlugField(max_length=40, unique=True)
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Order along the promotion path; lower comes first."
    )
    is_production = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    egress_allowlist = models.JSONField(
        default=list,
        blank=True,
        help_text="Networks (CIDR) or host names that endpoints here may reach beyond the public internet.",
    )
    ca_bundle = models.TextField(
        blank=True,
        help_text="PEM certificates that HTTPS endpoints here are verified against, "
        "instead of the system trust store (for an internal or self-signed CA).",
    )

    objects = EnvironmentQuerySet.as_manager()

    class Meta:
        ordering = ["position", "name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("catalog:environment_detail", args=[self.pk])

    def policy_team_id(self):
        return None

    def clean(self):
        from apps.core import egress

        try:
            egress.parse_allowlist(self.egress_allowlist or [])
        except ValueError as exc:
            raise ValidationError({"egress_allowlist": str(exc)})
        if self.ca_bundle.strip():
            try:
                certificates = x509.load_pem_x509_certificates(self.ca_bundle.encode())
            except ValueError:
                certificates = []
            if not certificates:
                raise ValidationError(
                    {
                        "ca_bundle": "Paste one or more PEM certificates (-----BEGIN CERTIFICATE-----)."
                    }
                )

    def ca_bundle_path(self) -> str | None:
        """A file holding the environment's CA certificates, for the TLS layer; None when unset."""
        if not self.ca_bundle.strip():
            return None
        digest = hashlib.sha256(self.ca_bundle.encode()).hexdigest()
        path = Path(settings.VAR_DIR) / "ca-bundles" / f"{digest}.pem"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(self.ca_bundle)
            partial.replace(path)
        return str(path)


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Pattern(models.TextChoices):
    SYNC_API = "sync_api", "Sync API"
    ASYNC_EVENT = "async_event", "Async event"
    BATCH_FILE = "batch_file", "Batch file"


class Platform(models.TextChoices):
    MULESOFT = "mulesoft", "MuleSoft"
    BOOMI = "boomi", "Boomi"
    AZURE_LOGIC_APPS = "azure_logic_apps", "Azure Logic Apps"
    KAFKA = "kafka", "Kafka"
    SAP_CPI = "sap_cpi", "SAP Integration Suite"
    WORKATO = "workato", "Workato"
    CUSTOM = "custom", "Custom"


class LifecycleStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    DESIGN = "design", "Design"
    BUILD = "build", "Build"
    TEST = "test", "Test"
    LIVE = "live", "Live"
    RETIRED = "retired", "Retired"


# Forward along the path, one step back for rework, and retirement from anywhere but live's past.
LIFECYCLE_TRANSITIONS = {
    LifecycleStatus.PROPOSED: {LifecycleStatus.DESIGN, LifecycleStatus.RETIRED},
    LifecycleStatus.DESIGN: {
        LifecycleStatus.PROPOSED,
        LifecycleStatus.BUILD,
        LifecycleStatus.RETIRED,
    },
    LifecycleStatus.BUILD: {LifecycleStatus.DESIGN, LifecycleStatus.TEST, LifecycleStatus.RETIRED},
    LifecycleStatus.TEST: {LifecycleStatus.BUILD, LifecycleStatus.LIVE, LifecycleStatus.RETIRED},
    LifecycleStatus.LIVE: {LifecycleStatus.RETIRED},
    LifecycleStatus.RETIRED: set(),
}


class Criticality(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


INTERFACE_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]{1,9}-\d{1,6}$")


class InterfaceQuerySet(PolicyQuerySet):
    team_lookup = "owner_team"


class Interface(TimeStampedModel):
    """One integration between a source and a target system, with its delivery metadata."""

    code = models.CharField(
        max_length=20,
        unique=True,
        validators=[
            RegexValidator(
                INTERFACE_CODE_RE, "Use capital letters, a dash and a number, e.g. INT-042."
            )
        ],
    )
    name = models.CharField(max_length=200)
    business_process = models.CharField(max_length=200, blank=True)
    source_system = models.ForeignKey(
        System, on_delete=models.PROTECT, related_name="outbound_interfaces"
    )
    target_system = models.ForeignKey(
        System, on_delete=models.PROTECT, related_name="inbound_interfaces"
    )
    pattern = models.CharField(max_length=20, choices=Pattern.choices)
    platform = models.CharField(max_length=30, choices=Platform.choices)
    owner_team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="interfaces")
    status = models.CharField(
        max_length=10,
        choices=LifecycleStatus.choices,
        default=LifecycleStatus.PROPOSED,
        db_index=True,
    )
    criticality = models.CharField(
        max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM
    )
    holds_personal_data = models.BooleanField(default=False)
    sla_latency_ms = models.PositiveIntegerField(
        "SLA latency (ms)",
        null=True,
        blank=True,
        help_text="Slowest acceptable response or delivery.",
    )
    sla_freshness_minutes = models.PositiveIntegerField(
        "SLA freshness (minutes)",
        null=True,
        blank=True,
        help_text="Oldest acceptable data in the target.",
    )
    expected_volume_per_day = models.PositiveIntegerField(
        "Expected volume (messages a day)", null=True, blank=True
    )
    runbook = models.TextField(blank=True, help_text="Markdown.")
    monitoring_url = models.URLField("Monitoring link", blank=True)
    dashboard_url = models.URLField("Dashboard link", blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="interfaces")
    strict_contracts = models.BooleanField(
        "Strict contract tests",
        default=True,
        help_text="Undeclared response fields and undocumented status codes fail contract tests.",
    )

    objects = InterfaceQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        indexes = [
            models.Index(fields=["owner_team", "status"]),
            models.Index(fields=["name"]),
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["updated_at"]),
        ]

    def __str__(self):
        return f"{self.code} {self.name}"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_status = instance.__dict__.get("status")
        return instance

    def get_absolute_url(self):
        return reverse("catalog:interface_detail", args=[self.code])

    def policy_team_id(self):
        return self.owner_team_id

    def allowed_next_statuses(self) -> list[str]:
        return [s for s in LifecycleStatus.values if s in LIFECYCLE_TRANSITIONS[self.status]]

    def clean(self):
        errors = {}
        if self.source_system_id and self.source_system_id == self.target_system_id:
            errors["target_system"] = "Source and target must be different systems."
        loaded = getattr(self, "_loaded_status", None)
        if loaded and self.status != loaded and self.status not in LIFECYCLE_TRANSITIONS[loaded]:
            allowed = (
                ", ".join(LifecycleStatus(s).label for s in sorted(LIFECYCLE_TRANSITIONS[loaded]))
                or "none"
            )
            errors["status"] = (
                f"An interface cannot move from {LifecycleStatus(loaded).label} to "
                f"{LifecycleStatus(self.status).label}. Allowed next: {allowed}."
            )
        if errors:
            raise ValidationError(errors)


class AuthType(models.TextChoices):
    NONE = "none", "None"
    API_KEY_HEADER = "api_key_header", "API key in header"
    API_KEY_QUERY = "api_key_query", "API key in query"
    BASIC = "basic", "Basic"
    BEARER = "bearer", "Bearer token"
    OAUTH2_CLIENT_CREDENTIALS = "oauth2_cc", "OAuth2 client credentials"


# The credential fields each auth type takes; all are encrypted together.
CREDENTIAL_FIELDS = {
    AuthType.NONE: (),
    AuthType.API_KEY_HEADER: ("api_key",),
    AuthType.API_KEY_QUERY: ("api_key",),
    AuthType.BASIC: ("username", "password"),
    AuthType.BEARER: ("token",),
    AuthType.OAUTH2_CLIENT_CREDENTIALS: ("client_id", "client_secret"),
}


class EndpointQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class Endpoint(EncryptedCredentialsMixin, TimeStampedModel):
    """Where an interface is reached in one environment, and how to authenticate.

    Credentials are encrypted at rest (apps.core.secrets) and write-only: only
    the names of the fields that are set are ever shown.
    """

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="endpoints")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="endpoints")
    base_url = models.URLField(max_length=500)
    auth_type = models.CharField(max_length=20, choices=AuthType.choices, default=AuthType.NONE)
    api_key_name = models.CharField(
        max_length=100, blank=True, help_text="Header or query parameter that carries the API key."
    )
    token_url = models.URLField(max_length=500, blank=True, help_text="OAuth2 token endpoint.")
    scopes = models.CharField(
        max_length=500, blank=True, help_text="OAuth2 scopes, space separated."
    )
    credentials_ciphertext = models.TextField(blank=True, editable=False)
    credential_fields_set = models.JSONField(default=list, blank=True, editable=False)
    timeout_seconds = models.FloatField(
        default=30, validators=[MinValueValidator(0.5), MaxValueValidator(300)]
    )
    rate_limit_per_second = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01), MaxValueValidator(10000)]
    )
    default_headers = models.JSONField(default=dict, blank=True)

    objects = EndpointQuerySet.as_manager()

    AUDIT_SECRET_FIELDS = ("credentials_ciphertext",)
    AUDIT_EXCLUDE_FIELDS = ("credential_fields_set",)

    class Meta:
        ordering = ["interface__code", "environment__position"]
        constraints = [
            models.UniqueConstraint(
                fields=["interface", "environment"], name="one_endpoint_per_environment"
            )
        ]

    def __str__(self):
        return f"{self.interface.code} @ {self.environment.name}"

    def get_absolute_url(self):
        return reverse("catalog:endpoint_detail", args=[self.pk])

    def policy_team_id(self):
        return self.interface.owner_team_id

    def clean(self):
        errors = {}
        if (
            self.auth_type in (AuthType.API_KEY_HEADER, AuthType.API_KEY_QUERY)
            and not self.api_key_name
        ):
            errors["api_key_name"] = "Name the header or query parameter that carries the API key."
        if self.auth_type == AuthType.OAUTH2_CLIENT_CREDENTIALS and not self.token_url:
            errors["token_url"] = "OAuth2 client credentials need a token URL."  # noqa: S105
        if not isinstance(self.default_headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in (self.default_headers or {}).items()
        ):
            errors["default_headers"] = (
                "Default headers must be an object of header names to text values."
            )
        if errors:
            raise ValidationError(errors)


class SpecKind(models.TextChoices):
    OPENAPI_30 = "openapi-3.0", "OpenAPI 3.0"
    OPENAPI_31 = "openapi-3.1", "OpenAPI 3.1"
    ASYNCAPI_2 = "asyncapi-2", "AsyncAPI 2.x"
    ASYNCAPI_3 = "asyncapi-3", "AsyncAPI 3.x"
    JSON_SCHEMA = "json-schema", "JSON Schema"


class ApiSpecQuerySet(PolicyQuerySet):
    team_lookup = "interface__owner_team"


class ApiSpec(models.Model):
    """One version of an interface's API spec, validated when it was uploaded. Immutable."""

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="specs")
    version = models.PositiveIntegerField()
    label = models.CharField(
        max_length=60, blank=True, help_text="The spec's own version, e.g. 1.2.0."
    )
    kind = models.CharField(max_length=20, choices=SpecKind.choices)
    spec_version = models.CharField(max_length=20, help_text="e.g. 3.1.0")
    title = models.CharField(max_length=200, blank=True)
    filename = models.CharField(max_length=200, blank=True)
    content = models.TextField()
    document = models.JSONField()
    operations = models.JSONField(default=list)
    operation_count = models.PositiveIntegerField(default=0)
    content_sha256 = models.CharField(max_length=64)
    notes = models.CharField(max_length=300, blank=True)
    uploaded_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ApiSpecQuerySet.as_manager()

    AUDIT_EXCLUDE_FIELDS = ("content", "document", "operations")

    class Meta:
        ordering = ["interface", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["interface", "version"], name="unique_spec_version")
        ]

    def __str__(self):
        return f"{self.interface.code} spec v{self.version}"

    def get_absolute_url(self):
        return reverse("catalog:spec_detail", args=[self.interface.code, self.version])

    def policy_team_id(self):
        return self.interface.owner_team_id


class EndpointCheck(JobRun):
    """A connectivity check of one endpoint: a GET of its base URL through the egress door."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="checks")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"check of {self.endpoint} ({self.status})"

    def policy_team_id(self):
        return self.endpoint.interface.owner_team_id
