"""Demo data for the embedded default: teams, users, environments, systems, interfaces,
endpoints against the local demo partner API and its spec. Idempotent: running it
again changes nothing that exists.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.accounts.models import Role, Team, User
from apps.catalog import services
from apps.catalog.models import (
    ApiSpec,
    AuthType,
    Endpoint,
    Environment,
    Interface,
    System,
    Tag,
)

DEMO_PARTNER_SPEC = Path(settings.BASE_DIR) / "apps" / "demo_partner" / "openapi.yaml"

TEAMS = [
    ("CRM Integration", "crm-integration", "Customer data between CRM, ERP and partners."),
    ("ERP Integration", "erp-integration", "Orders, invoices and finance flows."),
    ("Data Platform", "data-platform", "Feeds into the warehouse and reporting."),
]

USERS = [
    ("admin", Role.ADMIN, ["crm-integration", "erp-integration", "data-platform"], "Ada", "Admin"),
    ("lead", Role.LEAD, ["crm-integration", "erp-integration"], "Lee", "Lead"),
    ("engineer", Role.ENGINEER, ["crm-integration"], "Erin", "Engineer"),
    ("viewer", Role.VIEWER, [], "Vic", "Viewer"),
]

ENVIRONMENTS = [
    ("Dev", "dev", 1, False, ["127.0.0.1"]),
    ("Test", "test", 2, False, ["127.0.0.1"]),
    ("UAT", "uat", 3, False, ["127.0.0.1"]),
    ("Prod", "prod", 4, True, []),
]

SYSTEMS = [
    ("Salesforce CRM", "saas", "Head of Sales Operations", "crm-integration"),
    ("SAP S/4HANA", "on_prem", "Finance Director", "erp-integration"),
    ("Workday HRIS", "saas", "HR Operations", "data-platform"),
    ("ServiceNow ITSM", "saas", "IT Service Manager", "crm-integration"),
    ("Snowflake", "data_platform", "Chief Data Officer", "data-platform"),
    ("Billing Service", "custom_service", "Billing Product Owner", "erp-integration"),
    ("Northwind Partner API", "partner", "Partner Manager", "crm-integration"),
    ("Logistics Partner SFTP", "partner", "Supply Chain Lead", "erp-integration"),
]

RUNBOOK = """## When it fails

1. Check the **monitoring dashboard** for the last successful run.
2. Look for `401` in the logs: the partner token may have expired.
3. Re-run the failed batch from the integration platform.

| Contact | Role |
|---|---|
| Integration on-call | first line |
| Partner support | second line |
"""

INTERFACES = [
    # code, name, process, source, target, pattern, platform, team, status, criticality, pii, tags
    (
        "INT-001",
        "Partner customers to CRM",
        "sync partner customers",
        "Northwind Partner API",
        "Salesforce CRM",
        "sync_api",
        "mulesoft",
        "crm-integration",
        "test",
        "high",
        True,
        ["customers", "partner"],
    ),
    (
        "INT-002",
        "Partner orders to ERP",
        "create sales orders",
        "Northwind Partner API",
        "SAP S/4HANA",
        "sync_api",
        "mulesoft",
        "erp-integration",
        "build",
        "critical",
        False,
        ["orders", "partner"],
    ),
    (
        "INT-003",
        "Invoice status to CRM",
        "sync invoice status",
        "SAP S/4HANA",
        "Salesforce CRM",
        "async_event",
        "kafka",
        "erp-integration",
        "live",
        "high",
        False,
        ["invoices", "finance"],
    ),
    (
        "INT-004",
        "Accounts from CRM to ERP",
        "create customer master",
        "Salesforce CRM",
        "SAP S/4HANA",
        "sync_api",
        "boomi",
        "crm-integration",
        "live",
        "critical",
        True,
        ["customers"],
    ),
    (
        "INT-005",
        "Employees to warehouse",
        "daily HR snapshot",
        "Workday HRIS",
        "Snowflake",
        "batch_file",
        "azure_logic_apps",
        "data-platform",
        "live",
        "medium",
        True,
        ["hr", "warehouse"],
    ),
    (
        "INT-006",
        "Incidents to CRM cases",
        "link incidents to customers",
        "ServiceNow ITSM",
        "Salesforce CRM",
        "async_event",
        "workato",
        "crm-integration",
        "design",
        "medium",
        False,
        ["itsm"],
    ),
    (
        "INT-007",
        "Billing runs to ERP",
        "post billing journals",
        "Billing Service",
        "SAP S/4HANA",
        "batch_file",
        "custom",
        "erp-integration",
        "test",
        "high",
        False,
        ["finance"],
    ),
    (
        "INT-008",
        "Shipments from logistics partner",
        "import shipment notices",
        "Logistics Partner SFTP",
        "SAP S/4HANA",
        "batch_file",
        "boomi",
        "erp-integration",
        "proposed",
        "medium",
        False,
        ["logistics"],
    ),
    (
        "INT-009",
        "CRM opportunities to warehouse",
        "pipeline reporting",
        "Salesforce CRM",
        "Snowflake",
        "batch_file",
        "azure_logic_apps",
        "data-platform",
        "build",
        "low",
        False,
        ["warehouse"],
    ),
    (
        "INT-010",
        "Legacy fax orders",
        "manual order entry",
        "Logistics Partner SFTP",
        "Billing Service",
        "batch_file",
        "custom",
        "erp-integration",
        "retired",
        "low",
        False,
        ["legacy"],
    ),
]


@transaction.atomic
def load(*, password: str | None = None, port: int = 8000, **_options) -> dict:
    """Creates whatever demo data is missing. Returns what it did, and the password if it set one."""
    created = {"users": [], "password": None}
    teams = {
        slug: Team.objects.get_or_create(slug=slug, defaults={"name": name, "description": desc})[0]
        for name, slug, desc in TEAMS
    }

    new_users = [
        username for username, *_ in USERS if not User.objects.filter(username=username).exists()
    ]
    if new_users or password:
        password = password or secrets.token_urlsafe(12)
        created["password"] = password
    for username, role, team_slugs, first, last in USERS:
        user, made = User.objects.get_or_create(
            username=username,
            defaults={
                "role": role,
                "first_name": first,
                "last_name": last,
                "email": f"{username}@pontis.example",
            },
        )
        if made or created["password"]:
            user.set_password(password)
            user.save()
        if made:
            user.teams.set([teams[slug] for slug in team_slugs])
            created["users"].append(username)
    admin = User.objects.get(username="admin")

    for name, slug, position, production, allowlist in ENVIRONMENTS:
        Environment.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "position": position,
                "is_production": production,
                "egress_allowlist": allowlist,
            },
        )
    for name, kind, owner, team in SYSTEMS:
        if not System.objects.filter(name=name).exists():
            services.save_audited(
                admin, System(name=name, kind=kind, business_owner=owner, owner_team=teams[team])
            )

    systems = {s.name: s for s in System.objects.all()}
    for (
        code,
        name,
        process,
        source,
        target,
        pattern,
        platform,
        team,
        status,
        crit,
        pii,
        tags,
    ) in INTERFACES:
        if Interface.objects.filter(code=code).exists():
            continue
        interface = Interface(
            code=code,
            name=name,
            business_process=process,
            source_system=systems[source],
            target_system=systems[target],
            pattern=pattern,
            platform=platform,
            owner_team=teams[team],
            status=status,
            criticality=crit,
            holds_personal_data=pii,
            sla_latency_ms=2000 if pattern == "sync_api" else None,
            sla_freshness_minutes=15 if pattern != "sync_api" else None,
            expected_volume_per_day=5000,
            runbook=RUNBOOK,
            monitoring_url="https://monitoring.example.com/d/" + code.lower(),
        )
        services.save_audited(
            admin, interface, m2m={"tags": [Tag.objects.get_or_create(name=t)[0] for t in tags]}
        )

    partner_url = f"http://127.0.0.1:{port}/demo-partner/"
    for code in ("INT-001", "INT-002"):
        interface = Interface.objects.get(code=code)
        for env in Environment.objects.exclude(is_production=True):
            if Endpoint.objects.filter(interface=interface, environment=env).exists():
                continue
            services.save_endpoint(
                admin,
                Endpoint(
                    interface=interface,
                    environment=env,
                    base_url=partner_url,
                    auth_type=AuthType.BEARER,
                    timeout_seconds=10,
                    rate_limit_per_second=20,
                ),
                {"token": settings.PONTIS_DEMO_PARTNER_TOKEN},
            )
        if not ApiSpec.objects.filter(interface=interface).exists() and DEMO_PARTNER_SPEC.exists():
            services.upload_spec(
                admin,
                interface,
                DEMO_PARTNER_SPEC.read_bytes(),
                filename="openapi.yaml",
                notes="Demo partner API as served under /demo-partner/.",
            )
    return created
