"""Catalog benchmark: every catalog list page, every API list call and the global search.

1. Seeds a tiny catalog (10 interfaces) and counts the SQL queries of every request: the
   anchor of each query count.
2. Grows it to 10,000 interfaces, 500 systems, 40,000 endpoints (4 environments) and 5,000
   spec versions, and counts the queries again, each list at page sizes 25 and 100.
3. Times every request in-process through Django's test ``Client``: 30 requests after 3 of
   warm-up, in 3 passes; a figure is the median of the 3 medians, next to the same measure of
   ``GET /healthz`` (the floor of a request through the same client).

Run it with ``make bench`` (all benchmarks) or ``.venv/bin/python bench/catalog.py``. It uses
a database of its own (see ``common.prepare_database``) and writes
``bench/results/catalog.json``.
"""

import hashlib
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from urllib.parse import quote

import common

LIST_GOAL_MS = 50
SEARCH_GOAL_MS = 100
PAGE_SIZES = (25, 100)
WARMUP_REQUESTS = 3
TIMED_REQUESTS = 30
PASSES = 3

# ---------------------------------------------------------------- the seeded catalog


@dataclass(frozen=True)
class CatalogSize:
    """How many rows of each kind to seed (endpoints and specs follow from interfaces)."""

    teams: int
    users: int
    systems: int
    tags: int
    interfaces: int
    extra_tokens: int  # API tokens of the benchmark user besides the one it measures with


TINY = CatalogSize(teams=2, users=3, systems=5, tags=5, interfaces=10, extra_tokens=0)
FULL = CatalogSize(teams=20, users=50, systems=500, tags=60, interfaces=10_000, extra_tokens=24)

# Every 4th interface has two spec versions: 10,000 interfaces give 5,000 specs.
SPEC_EVERY = 4
SPEC_VERSIONS = (1, 2)

ENVIRONMENTS = [  # name, slug, position, is_production
    ("Dev", "dev", 1, False),
    ("Test", "test", 2, False),
    ("UAT", "uat", 3, False),
    ("Prod", "prod", 4, True),
]

SYSTEM_BASES = [
    ("Salesforce CRM", "saas"),
    ("SAP S4HANA", "on_prem"),
    ("Workday HCM", "saas"),
    ("ServiceNow ITSM", "saas"),
    ("Snowflake", "data_platform"),
    ("Billing Service", "custom_service"),
    ("Northwind Partner", "partner"),
    ("Oracle EBS", "on_prem"),
    ("Dynamics 365", "saas"),
    ("Shopify", "saas"),
    ("Zendesk", "saas"),
    ("Coupa", "saas"),
    ("Order Service", "custom_service"),
    ("Data Lake", "data_platform"),
    ("HubSpot", "saas"),
    ("NetSuite", "saas"),
    ("Pricing Service", "custom_service"),
    ("SuccessFactors", "saas"),
    ("Stripe", "partner"),
    ("Logistics SFTP", "partner"),
]
NOUNS = [
    "Customer", "Order", "Invoice", "Shipment", "Payment", "Employee", "Product", "Price",
    "Stock", "Contract", "Ticket", "Supplier", "Asset", "Lead", "Refund", "Timesheet",
    "Account", "Quote", "Return", "Campaign", "Payslip", "Booking", "Claim", "Vendor", "Budget",
]  # fmt: skip
EVENTS = ["status", "created", "updated", "master data", "snapshot", "changes", "balance"]
FLOWS = ["sync", "feed", "export", "import", "replication", "notification", "reconciliation"]
TAG_WORDS = [
    "gdpr", "finance", "hr", "sales", "logistics", "pci", "realtime", "nightly", "partner",
    "legacy", "sox", "customer-data",
]  # fmt: skip
RUNBOOK = """## When it fails

1. Check the monitoring dashboard for the last successful run.
2. Look for `401` in the logs: the partner token may have expired.
3. Re-run the failed batch from the integration platform.
"""


def team_name(number: int) -> str:
    return f"Team {number:02d}"


def system_name(number: int) -> str:
    return f"{SYSTEM_BASES[number % len(SYSTEM_BASES)][0]} {number:03d}"


def tag_name(number: int) -> str:
    return TAG_WORDS[number - 1] if number <= len(TAG_WORDS) else f"domain-{number:02d}"


def interface_code(number: int) -> str:
    return f"INT-{number:05d}"


def interface_name(number: int) -> str:
    noun = NOUNS[number % len(NOUNS)]
    event = EVENTS[number // len(NOUNS) % len(EVENTS)]
    flow = FLOWS[number // (len(NOUNS) * len(EVENTS)) % len(FLOWS)]
    return f"{noun} {event} {flow}"


def seed(size: CatalogSize) -> None:
    """Grows the catalog to ``size``; rows that exist already are kept as they are."""
    from django.db import transaction

    with transaction.atomic():
        teams = seed_teams(size.teams)
        seed_users(size.users, teams)
        environments = seed_environments()
        systems = seed_systems(size.systems, teams)
        tags = seed_tags(size.tags)
        seed_interfaces(size.interfaces, teams, systems, tags, environments)


def seed_teams(total: int) -> list:
    from apps.accounts.models import Team

    start = Team.objects.count() + 1
    Team.objects.bulk_create(
        Team(name=team_name(number), slug=f"team-{number:02d}")
        for number in range(start, total + 1)
    )
    return list(Team.objects.order_by("pk"))


def seed_users(total: int, teams: list) -> None:
    """Users ``user001``… with a cycle of roles, each in one team; none can sign in."""
    from django.contrib.auth.hashers import make_password

    from apps.accounts.models import Role, User

    roles = [Role.VIEWER, Role.ENGINEER, Role.ENGINEER, Role.LEAD, Role.ADMIN]
    start = User.objects.filter(username__startswith="user").count() + 1
    numbers = range(start, total + 1)
    User.objects.bulk_create(
        User(
            username=f"user{number:03d}",
            email=f"user{number:03d}@example.com",
            role=roles[number % len(roles)],
            password=make_password(None),
        )
        for number in numbers
    )
    new_users = User.objects.filter(username__in=[f"user{number:03d}" for number in numbers])
    User.teams.through.objects.bulk_create(
        User.teams.through(user_id=user.pk, team_id=teams[user.pk % len(teams)].pk)
        for user in new_users
    )


def seed_environments() -> list:
    from apps.catalog.models import Environment

    if not Environment.objects.exists():
        Environment.objects.bulk_create(
            Environment(name=name, slug=slug, position=position, is_production=production)
            for name, slug, position, production in ENVIRONMENTS
        )
    return list(Environment.objects.order_by("position"))


def seed_systems(total: int, teams: list) -> list:
    from apps.catalog.models import System

    start = System.objects.count() + 1
    System.objects.bulk_create(
        System(
            name=system_name(number),
            kind=SYSTEM_BASES[number % len(SYSTEM_BASES)][1],
            business_owner=f"Owner of {system_name(number)}",
            owner_team=teams[number % len(teams)],
            description="Seeded by the catalog benchmark.",
        )
        for number in range(start, total + 1)
    )
    return list(System.objects.order_by("pk"))


def seed_tags(total: int) -> list:
    from apps.catalog.models import Tag

    start = Tag.objects.count() + 1
    Tag.objects.bulk_create(Tag(name=tag_name(number)) for number in range(start, total + 1))
    return list(Tag.objects.order_by("pk"))


def seed_interfaces(total: int, teams: list, systems: list, tags: list, environments: list):
    """Interfaces with their tags, one endpoint per environment and, for some, two specs."""
    from apps.catalog.models import Interface

    numbers = range(Interface.objects.count() + 1, total + 1)
    Interface.objects.bulk_create(
        (new_interface(number, teams, systems) for number in numbers), batch_size=1000
    )
    ids = dict(Interface.objects.values_list("code", "pk"))

    links = []
    for number in numbers:
        for tag in tags_of(number, tags):
            links.append(Interface.tags.through(interface_id=ids[interface_code(number)], tag=tag))
    Interface.tags.through.objects.bulk_create(links, batch_size=2000)

    seed_endpoints(numbers, ids, environments)
    seed_specs(numbers, ids)


def new_interface(number: int, teams: list, systems: list):
    """An unsaved interface; its source and target differ and spread over every system."""
    from apps.catalog.models import Criticality, Interface, LifecycleStatus, Pattern, Platform

    count = len(systems)
    source = systems[number % count]
    target = systems[(number + 1 + (number // count) % (count - 1)) % count]
    code = interface_code(number)
    return Interface(
        code=code,
        name=interface_name(number),
        business_process=f"{NOUNS[number % len(NOUNS)].lower()} management",
        source_system=source,
        target_system=target,
        pattern=Pattern.values[number % len(Pattern.values)],
        platform=Platform.values[number % len(Platform.values)],
        owner_team=teams[number % len(teams)],
        status=LifecycleStatus.values[number % len(LifecycleStatus.values)],
        criticality=Criticality.values[number % len(Criticality.values)],
        holds_personal_data=number % 5 == 0,
        sla_latency_ms=200 + number % 5 * 100,
        sla_freshness_minutes=15 + number % 4 * 15,
        expected_volume_per_day=number * 37 % 100_000,
        runbook=RUNBOOK,
        monitoring_url=f"https://monitoring.example.com/{code.lower()}",
    )


def tags_of(number: int, tags: list) -> list:
    """Two or three of the tags, chosen by the interface's number."""
    count = len(tags)
    picks = {number % count, (number * 7 + 3) % count}
    if number % 3 == 0:
        picks.add((number * 13 + 5) % count)
    return [tags[index] for index in sorted(picks)]


def seed_endpoints(numbers: range, ids: dict, environments: list) -> None:
    """One endpoint per interface and environment; credentials encrypted once per auth type."""
    from apps.catalog.models import AuthType, Endpoint

    templates = []
    for auth_type, extra, credentials in [
        (AuthType.NONE, {}, {}),
        (AuthType.BEARER, {}, {"token": "bench-token"}),
        (AuthType.BASIC, {}, {"username": "bench", "password": "bench-password"}),
        (AuthType.API_KEY_HEADER, {"api_key_name": "X-API-Key"}, {"api_key": "bench-key"}),
        (
            AuthType.OAUTH2_CLIENT_CREDENTIALS,
            {"token_url": "https://auth.example.com/token", "scopes": "read"},
            {"client_id": "bench", "client_secret": "bench-secret"},
        ),
    ]:
        template = Endpoint(auth_type=auth_type, **extra)
        template.set_credentials(credentials)
        templates.append(template)

    endpoints = []
    for number in numbers:
        code = interface_code(number)
        template = templates[number % len(templates)]
        for environment in environments:
            endpoints.append(
                Endpoint(
                    interface_id=ids[code],
                    environment=environment,
                    base_url=f"https://{environment.slug}.api.example.com/{code.lower()}",
                    auth_type=template.auth_type,
                    api_key_name=template.api_key_name,
                    token_url=template.token_url,
                    scopes=template.scopes,
                    credentials_ciphertext=template.credentials_ciphertext,
                    credential_fields_set=template.credential_fields_set,
                    rate_limit_per_second=10 if environment.is_production else None,
                    default_headers={"Accept": "application/json"},
                )
            )
    Endpoint.objects.bulk_create(endpoints, batch_size=2000)


def seed_specs(numbers: range, ids: dict) -> None:
    """Two versions of a small OpenAPI 3.1 document for every 4th interface, each validated."""
    from apps.catalog import specs
    from apps.catalog.models import ApiSpec

    rows = []
    for number in numbers:
        if number % SPEC_EVERY:
            continue
        code = interface_code(number)
        for version in SPEC_VERSIONS:
            document = spec_document(number, version)
            summary = specs.validate_spec(document)
            operations = specs.list_operations(summary.kind, document)
            content = json.dumps(document, indent=2)
            rows.append(
                ApiSpec(
                    interface_id=ids[code],
                    version=version,
                    label=summary.api_version,
                    kind=summary.kind,
                    spec_version=summary.version,
                    title=summary.title,
                    filename=f"{code.lower()}-v{version}.json",
                    content=content,
                    document=document,
                    operations=[asdict(operation) for operation in operations],
                    operation_count=len(operations),
                    content_sha256=hashlib.sha256(content.encode()).hexdigest(),
                )
            )
    ApiSpec.objects.bulk_create(rows, batch_size=500)


def spec_document(number: int, version: int) -> dict:
    """A small OpenAPI 3.1 document; version 2 adds a history operation (a compatible change)."""
    resource = f"/{NOUNS[number % len(NOUNS)].lower()}s"
    item_schema = {"$ref": "#/components/schemas/Item"}
    json_of = {"application/json": {"schema": item_schema}}
    id_parameter = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    paths = {
        resource: {
            "get": {
                "operationId": "listItems",
                "summary": "List items",
                "parameters": [{"name": "page", "in": "query", "schema": {"type": "integer"}}],
                "responses": {
                    "200": {
                        "description": "A page of items.",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": item_schema}}
                        },
                    }
                },
            },
            "post": {
                "operationId": "createItem",
                "summary": "Create an item",
                "requestBody": {"required": True, "content": json_of},
                "responses": {
                    "201": {"description": "Created.", "content": json_of},
                    "400": {"description": "Invalid item."},
                },
            },
        },
        f"{resource}/{{id}}": {
            "get": {
                "operationId": "getItem",
                "summary": "Get one item",
                "parameters": [id_parameter],
                "responses": {
                    "200": {"description": "The item.", "content": json_of},
                    "404": {"description": "No such item."},
                },
            }
        },
    }
    if version >= 2:
        paths[f"{resource}/{{id}}/history"] = {
            "get": {
                "operationId": "getItemHistory",
                "summary": "The item's changes",
                "parameters": [id_parameter],
                "responses": {"200": {"description": "Changes, newest first."}},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{interface_name(number)} API", "version": f"1.{version - 1}.0"},
        "paths": paths,
        "components": {
            "schemas": {
                "Item": {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"type": "string", "enum": ["open", "closed"]},
                        "amount": {"type": "number"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                }
            }
        },
    }


def create_bench_user():
    """The user who makes every request: an engineer in the first team."""
    from django.contrib.auth.hashers import make_password

    from apps.accounts.models import Role, Team, User

    user = User.objects.create(username="bench", role=Role.ENGINEER, password=make_password(None))
    user.teams.add(Team.objects.order_by("pk").first())
    return user


def seed_extra_tokens(user, total: int) -> None:
    """More API tokens of the benchmark user, so that ``/api/v1/tokens/`` has a page to list."""
    from apps.accounts.models import ApiToken

    start = user.api_tokens.filter(name__startswith="extra-").count() + 1
    for number in range(start, total + 1):
        ApiToken.issue(user=user, name=f"extra-{number:02d}")


def dataset_counts() -> dict:
    from apps.accounts.models import ApiToken, Team, User
    from apps.catalog.models import ApiSpec, Endpoint, Environment, Interface, System, Tag

    return {
        "interfaces": Interface.objects.count(),
        "systems": System.objects.count(),
        "environments": Environment.objects.count(),
        "endpoints": Endpoint.objects.count(),
        "specs": ApiSpec.objects.count(),
        "teams": Team.objects.count(),
        "tags": Tag.objects.count(),
        "interface_tags": Interface.tags.through.objects.count(),
        "users": User.objects.count(),
        "api_tokens": ApiToken.objects.count(),
    }


# ---------------------------------------------------------------- what is measured


@dataclass(frozen=True)
class Case:
    """One request to measure. ``kind``: page, partial (htmx table), api or search."""

    name: str
    kind: str
    url: str
    goal_ms: int
    page_size: int | None = None

    @property
    def headers(self) -> dict:
        if self.kind == "partial":
            return {"HX-Request": "true", "HX-Target": "list-table"}
        if self.kind == "search":
            return {"HX-Request": "true"}
        return {}


NAME_WORD = NOUNS[3]  # "Shipment": in 1 of 25 interface names
LISTS = [
    # kind, path, query (without page_size)
    ("page", "/interfaces/", ""),
    ("page", "/interfaces/", "status=live&sort=-updated"),
    ("page", "/interfaces/", f"q={NAME_WORD}"),
    ("partial", "/interfaces/", ""),
    ("page", "/systems/", ""),
    ("page", "/endpoints/", ""),
    ("page", "/environments/", ""),
    ("api", "/api/v1/interfaces/", ""),
    ("api", "/api/v1/interfaces/", "status=live&ordering=-updated_at"),
    ("api", "/api/v1/interfaces/", f"search={NAME_WORD}"),
    ("api", "/api/v1/systems/", ""),
    ("api", "/api/v1/endpoints/", ""),
    ("api", "/api/v1/environments/", ""),
    ("api", "/api/v1/specs/", ""),
    ("api", "/api/v1/teams/", ""),
    ("api", "/api/v1/tags/", ""),
    ("api", "/api/v1/tokens/", ""),
]
SEARCHES = [
    ("code prefix", "INT-000"),
    ("name word", NAME_WORD),
    ("system name", system_name(2)),
    ("tag", tag_name(1)),
]


def build_cases() -> list[Case]:
    cases = []
    for kind, path, query in LISTS:
        shown = f"{path}?{query}" if query else path
        for page_size in PAGE_SIZES:
            url = (
                f"{path}?{query}&page_size={page_size}"
                if query
                else f"{path}?page_size={page_size}"
            )
            label = "htmx table" if kind == "partial" else kind
            cases.append(
                Case(
                    name=f"{label} {shown} [{page_size}]",
                    kind=kind,
                    url=url,
                    goal_ms=LIST_GOAL_MS,
                    page_size=page_size,
                )
            )
    for label, term in SEARCHES:
        cases.append(
            Case(
                name=f"search {label}: {term}",
                kind="search",
                url=f"/search/?q={quote(term)}",
                goal_ms=SEARCH_GOAL_MS,
            )
        )
    return cases


def check_response(case: Case, response) -> None:
    """Refuses a response that is not the full, non-empty list or search result asked for."""
    problem = ""
    body = response.content
    if response.status_code != 200:
        problem = f"HTTP {response.status_code}"
    elif case.kind == "api":
        data = json.loads(body)
        expected = min(case.page_size, data["count"])
        if data["count"] == 0 or len(data["results"]) != expected:
            problem = f"{len(data['results'])} results of {data['count']}, expected {expected}"
    elif case.kind in ("page", "partial"):
        rows = body.count(b"<tr>") - 1  # less the header row
        total = re.search(rb" of (\d+)</span>", body)
        expected = min(case.page_size, int(total.group(1))) if total else 0
        if rows < 1 or rows != expected:
            problem = f"{rows} table rows, expected {expected}"
        elif (b"<html" in body) != (case.kind == "page"):
            problem = "a full page where the table partial was asked for, or the reverse"
    elif b'href="/interfaces/' not in body:
        problem = "no interface found"
    if problem:
        raise common.BenchError(f"{case.name} ({case.url}): {problem}")


def count_all(cases: list[Case], clients: dict) -> dict[str, list[dict]]:
    """The SQL queries of one request of each case, checking each response."""
    queries = {}
    for case in cases:
        captured, response = common.count_queries(clients[case.kind], case.url, case.headers)
        check_response(case, response)
        queries[case.name] = captured
    return queries


def time_url(client, url: str, headers: dict) -> list[float]:
    """Milliseconds of ``TIMED_REQUESTS`` requests after ``WARMUP_REQUESTS`` untimed ones."""
    for _ in range(WARMUP_REQUESTS):
        client.get(url, headers=headers)
    samples = []
    for _ in range(TIMED_REQUESTS):
        elapsed_ms, response = common.time_get(client, url, headers)
        if response.status_code != 200:
            raise common.BenchError(f"{url}: HTTP {response.status_code} while timing")
        samples.append(elapsed_ms)
    return samples


# ---------------------------------------------------------------- the run


@dataclass
class Measurements:
    """Everything one run measured, for the table and the results file."""

    tiny_counts: dict
    counts: dict
    seed_seconds: dict
    tiny_queries: dict  # case name -> the SQL queries of one request, tiny dataset
    full_queries: dict  # case name -> the SQL queries of one request, full dataset
    healthz: dict  # common.summarise() of GET /healthz
    timings: dict  # case name -> common.summarise() of its requests


def main() -> int:
    try:
        database = common.prepare_database()
    except common.BenchError as exc:
        print(f"catalog benchmark failed: {exc}", file=sys.stderr)
        return 1
    try:
        notes = [f"Database: {database.description}.", *common.setup_django()]
        for note in notes:
            print(note)
        cases = build_cases()
        measured = measure(cases)
        figures, rows = build_figures(cases, measured)
        path = common.write_results("catalog", results_document(database, notes, measured, figures))
        print_report(cases, measured, rows)
        print(f"\nResults written to {path.relative_to(common.REPO_DIR)}")
        return 0
    except common.BenchError as exc:
        print(f"catalog benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        database.finish()


def measure(cases: list[Case]) -> Measurements:
    """Seeds the tiny dataset and counts queries, grows it to the full one, counts and times."""
    from django.test import Client

    from apps.accounts.models import ApiToken
    from apps.catalog.models import Interface

    if Interface.objects.exists():
        raise common.BenchError("the database already holds interfaces; it must be empty")

    started = time.perf_counter()
    seed(TINY)
    user = create_bench_user()
    _, key = ApiToken.issue(user=user, name="bench")
    seed_extra_tokens(user, TINY.extra_tokens)
    tiny_seconds = time.perf_counter() - started
    tiny_counts = dataset_counts()

    page_client = Client()
    page_client.force_login(user)
    api_client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    clients = {
        "page": page_client,
        "partial": page_client,
        "search": page_client,
        "api": api_client,
    }

    print(f"Counting queries against the tiny dataset ({tiny_counts['interfaces']} interfaces)…")
    tiny_queries = count_all(cases, clients)

    print("Seeding the full dataset…")
    started = time.perf_counter()
    seed(FULL)
    seed_extra_tokens(user, FULL.extra_tokens)
    full_seconds = time.perf_counter() - started
    counts = dataset_counts()
    print(f"Seeded in {full_seconds:.1f} s: {counts}")
    full_queries = count_all(cases, clients)

    healthz_passes = []
    case_passes = {case.name: [] for case in cases}
    for number in range(1, PASSES + 1):
        print(f"Timing pass {number} of {PASSES}…")
        healthz_passes.append(time_url(page_client, "/healthz", {}))
        for case in cases:
            case_passes[case.name].append(time_url(clients[case.kind], case.url, case.headers))

    return Measurements(
        tiny_counts=tiny_counts,
        counts=counts,
        seed_seconds={"tiny": round(tiny_seconds, 2), "full": round(full_seconds, 2)},
        tiny_queries=tiny_queries,
        full_queries=full_queries,
        healthz=common.summarise(healthz_passes),
        timings={name: common.summarise(passes) for name, passes in case_passes.items()},
    )


def build_figures(cases: list[Case], measured: Measurements) -> tuple[list[dict], list[list]]:
    """Two figures per case (time, queries), and its row of the printed table."""
    healthz = measured.healthz["median"]
    tiny_interfaces = measured.tiny_counts["interfaces"]
    figures = []
    rows = []
    for case in cases:
        timing = measured.timings[case.name]
        full_queries = measured.full_queries[case.name]
        queries = len(full_queries)
        tiny = len(measured.tiny_queries[case.name])
        sql = sql_ms(full_queries)
        meets_goal = timing["median"] < case.goal_ms
        time_figure = {
            "metric": f"{case.name}: median server time",
            "unit": "ms",
            "value": round(timing["median"], 2),
            "anchor": "GET /healthz median server time (same client, same run)",
            "anchor_value": round(healthz, 2),
            "ratio": round(timing["median"] / healthz, 2),
            "goal": case.goal_ms,
            "meets_goal": meets_goal,
            "p95": round(timing["p95"], 2),
            "pass_medians": [round(value, 2) for value in timing["pass_medians"]],
            "sql_ms_one_request": round(sql, 1),
            "url": case.url,
        }
        if not meets_goal:
            time_figure["slowest_queries"] = slowest_queries(full_queries)
        query_figure = {
            "metric": f"{case.name}: SQL queries per request",
            "unit": "queries",
            "value": queries,
            "anchor": f"same URL against the tiny dataset ({tiny_interfaces} interfaces)",
            "anchor_value": tiny,
            "ratio": round(queries / tiny, 2),
            "constant": queries == tiny,
            "url": case.url,
        }
        figures += [time_figure, query_figure]
        rows.append(
            [
                case.name,
                f"{timing['median']:.1f}",
                f"{timing['p95']:.1f}",
                f"{timing['median'] / healthz:.1f}",
                f"{case.goal_ms}{'' if meets_goal else ' MISS'}",
                f"{sql:.0f}",
                str(queries),
                str(tiny),
                f"{queries / tiny:.2f}",
            ]
        )
    return figures, rows


def results_document(database, notes: list[str], measured: Measurements, figures) -> dict:
    """The contents of bench/results/catalog.json."""
    healthz = measured.healthz
    return {
        "benchmark": "catalog",
        "machine": common.machine_info(),
        "database": database.description,
        "notes": notes,
        "dataset": {
            **measured.counts,
            "anchor_dataset": measured.tiny_counts,
            "seed_seconds": measured.seed_seconds,
        },
        "method": {
            "client": "django.test.Client, in-process",
            "warmup_requests": WARMUP_REQUESTS,
            "timed_requests_per_pass": TIMED_REQUESTS,
            "passes": PASSES,
            "value": "median of the per-pass medians",
            "p95": "nearest rank over every timed request of every pass",
            "sql_ms_one_request": "database time of the one request whose queries were counted",
        },
        "anchors": {
            "healthz_ms": {
                "median": round(healthz["median"], 3),
                "p95": round(healthz["p95"], 3),
                "pass_medians": [round(value, 3) for value in healthz["pass_medians"]],
            }
        },
        "figures": figures,
    }


def print_report(cases: list[Case], measured: Measurements, rows: list[list]) -> None:
    counts = measured.counts
    healthz = measured.healthz
    print()
    print(
        f"Dataset: {counts['interfaces']:,} interfaces, {counts['systems']:,} systems, "
        f"{counts['endpoints']:,} endpoints, {counts['specs']:,} specs, {counts['teams']} teams, "
        f"{counts['tags']} tags, {counts['users']} users; seeded in "
        f"{measured.seed_seconds['full']:.1f} s (tiny anchor dataset: "
        f"{measured.seed_seconds['tiny']:.1f} s)."
    )
    print(
        f"Anchor: GET /healthz median {healthz['median']:.2f} ms (p95 {healthz['p95']:.2f} ms); "
        f"times are medians of {PASSES} passes of {TIMED_REQUESTS} requests; "
        "sql ms is the database time of one request."
    )
    print()
    headers = [
        "name", "median ms", "p95 ms", "x healthz", "goal ms", "sql ms", "queries", "tiny", "ratio",
    ]  # fmt: skip
    print(common.format_table(headers, rows))
    print()
    print_query_summary(cases, measured)
    print_missed_goals(cases, measured)


def sql_ms(queries: list[dict]) -> float:
    """Milliseconds spent in the database by one request (Django records them to the ms)."""
    return sum(float(query["time"]) for query in queries) * 1000


def slowest_queries(queries: list[dict], limit: int = 3) -> list[dict]:
    """The slowest queries of one request, slowest first, their SQL shortened."""
    ordered = sorted(queries, key=lambda query: float(query["time"]), reverse=True)
    return [
        {"ms": round(float(query["time"]) * 1000, 2), "sql": query["sql"][:600]}
        for query in ordered[:limit]
    ]


def page_size_differences(cases: list[Case], measured: Measurements) -> list[str]:
    """The lists whose query count differs between page size 25 and page size 100."""
    differences = []
    by_name = {case.name: case for case in cases}
    for case in cases:
        if case.page_size != PAGE_SIZES[-1]:
            continue
        smaller = by_name[case.name.replace(f"[{case.page_size}]", f"[{PAGE_SIZES[0]}]")]
        for label, queries in (("full", measured.full_queries), ("tiny", measured.tiny_queries)):
            if len(queries[case.name]) != len(queries[smaller.name]):
                differences.append(
                    f"{case.name} ({label} dataset): {len(queries[smaller.name])} queries at "
                    f"page size {PAGE_SIZES[0]}, {len(queries[case.name])} at {case.page_size}"
                )
    return differences


def print_query_summary(cases: list[Case], measured: Measurements) -> None:
    grows = [
        f"{case.name}: {len(measured.tiny_queries[case.name])} with the tiny dataset, "
        f"{len(measured.full_queries[case.name])} with the full one"
        for case in cases
        if len(measured.full_queries[case.name]) != len(measured.tiny_queries[case.name])
    ]
    differences = grows + page_size_differences(cases, measured)
    if differences:
        print("Query counts are NOT constant:")
        for line in differences:
            print(f"  {line}")
    else:
        print(
            f"Query counts are constant: the same at page size {PAGE_SIZES[0]} and "
            f"{PAGE_SIZES[-1]}, and with {measured.tiny_counts['interfaces']:,} and "
            f"{measured.counts['interfaces']:,} interfaces."
        )


def print_missed_goals(cases: list[Case], measured: Measurements) -> None:
    missed = [case for case in cases if measured.timings[case.name]["median"] >= case.goal_ms]
    if not missed:
        print("Every median meets its goal.")
        return
    print(f"{len(missed)} of {len(cases)} medians miss their goal:")
    for case in missed:
        queries = measured.full_queries[case.name]
        print(
            f"  {case.name}: {measured.timings[case.name]['median']:.1f} ms (goal "
            f"{case.goal_ms} ms), of which SQL {sql_ms(queries):.0f} ms in one request  {case.url}"
        )
        slow = [query for query in slowest_queries(queries) if query["ms"] >= 1]
        for query in slow:
            print(f"      {query['ms']:7.2f} ms  {query['sql'][:240]}")
        if not slow:
            print(
                "      no query takes 1 ms: the time goes to Python (views, templates, serializers)"
            )


if __name__ == "__main__":
    sys.exit(main())
