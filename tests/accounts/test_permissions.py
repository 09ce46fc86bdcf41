"""Read-only means read-only: every write route refuses a viewer; team ownership bounds engineers."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from apps.accounts.models import ApiToken
from apps.catalog.models import ApiSpec, EndpointCheck
from apps.core.models import AuditEntry
from apps.mappings.models import FieldRule, LookupEntry, LookupTable, MappingSpec, MappingTest
from apps.reconciliation.models import DataSource, ReconciliationJob, ReconciliationRun
from apps.testing.models import (
    Defect,
    KnownFinding,
    TestCase,
    TestResult,
    TestRun,
    TestSchedule,
)
from tests.factories import EndpointFactory

UNSAFE_METHODS = ("post", "put", "patch", "delete")


@pytest.fixture
def catalog_objects(interface_a, environment, team_a, admin_user):
    endpoint = EndpointFactory(
        interface=interface_a, environment=environment, base_url="http://127.0.0.1:9/"
    )
    spec = ApiSpec.objects.create(
        interface=interface_a,
        version=1,
        kind="openapi-3.0",
        spec_version="3.0.3",
        content="{}",
        document={},
        content_sha256="0" * 64,
    )
    check = EndpointCheck.objects.create(endpoint=endpoint)
    case = TestCase.objects.create(interface=interface_a, name="list", path="customers/")
    run = TestRun.objects.create(interface=interface_a, environment=environment)
    defect = Defect.objects.create(interface=interface_a, title="broken")
    finding = KnownFinding.objects.create(interface=interface_a, check_name="x", reason="known")
    result = TestResult.objects.create(
        run=run, case=case, case_name="list", outcome="failed", correlation_id="c1"
    )
    token, _ = ApiToken.issue(user=admin_user, name="someone else's")
    schedule = TestSchedule.objects.create(
        interface=interface_a, environment=environment, name="nightly", cron="0 2 * * *"
    )
    mapping_spec = MappingSpec.objects.create(interface=interface_a, name="Orders to ERP")
    mapping_rule = FieldRule.objects.create(
        spec=mapping_spec, position=1, target_path="id", source_paths=["number"]
    )
    mapping_test = MappingTest.objects.create(spec=mapping_spec, name="simple", source_payload={})
    lookup_table = LookupTable.objects.create(name="countries", owner_team=team_a)
    lookup_entry = LookupEntry.objects.create(table=lookup_table, key="Germany", value="DE")
    data_source = DataSource.objects.create(owner_team=team_a, name="erp orders", kind="file")
    recon_job = ReconciliationJob.objects.create(
        interface=interface_a,
        name="orders",
        source=data_source,
        target=data_source,
        key_columns=["id"],
    )
    recon_run = ReconciliationRun.objects.create(job=recon_job)
    return {
        "interface": interface_a,
        "environment": environment,
        "endpoint": endpoint,
        "spec": spec,
        "check": check,
        "case": case,
        "run": run,
        "defect": defect,
        "finding": finding,
        "result": result,
        "team": team_a,
        "system": interface_a.source_system,
        "token": token,
        "schedule": schedule,
        "mapping_spec": mapping_spec,
        "mapping_rule": mapping_rule,
        "mapping_test": mapping_test,
        "lookup_table": lookup_table,
        "lookup_entry": lookup_entry,
        "data_source": data_source,
        "recon_job": recon_job,
        "recon_run": recon_run,
    }


def _api_path(template: str, objects: dict) -> str:
    """Fills an OpenAPI path template with ids of real objects."""
    resource = template.split("/")[3]
    values = {
        "teams": {"slug": objects["team"].slug},
        "tokens": {"id": objects["token"].pk},
        "systems": {"id": objects["system"].pk},
        "environments": {"slug": objects["environment"].slug},
        "interfaces": {"code": objects["interface"].code},
        "endpoints": {"id": objects["endpoint"].pk},
        "specs": {"id": objects["spec"].pk},
        "endpoint-checks": {"id": objects["check"].pk},
        "tags": {"id": 1},
        "users": {"id": objects["token"].user_id},
        "test-cases": {"id": objects["case"].pk},
        "test-runs": {"id": objects["run"].pk},
        "defects": {"id": objects["defect"].pk},
        "known-findings": {"id": objects["finding"].pk},
        "test-schedules": {"id": objects["schedule"].pk},
        "mapping-specs": {"id": objects["mapping_spec"].pk},
        "mapping-rules": {"id": objects["mapping_rule"].pk},
        "mapping-tests": {"id": objects["mapping_test"].pk},
        "lookup-tables": {
            "id": objects["lookup_table"].pk,
            "table_id": objects["lookup_table"].pk,
            "entry_id": objects["lookup_entry"].pk,
        },
        "data-sources": {"id": objects["data_source"].pk},
        "reconciliation-jobs": {"id": objects["recon_job"].pk},
        "reconciliation-runs": {"id": objects["recon_run"].pk},
    }[resource]
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), template)


# POSTs that only read (they write nothing): every signed-in reader may call them.
READ_ONLY_POSTS = {
    ("post", "/api/v1/mapping-specs/{id}/transform/"),
    ("post", "/api/v1/mapping-specs/{id}/run-tests/"),
}


def api_write_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method, path)
        for path, item in sorted(schema["paths"].items())
        for method in item
        if method in UNSAFE_METHODS
    ]


def test_the_api_has_write_operations_to_walk(db):
    # Guards the walk below against silently walking nothing.
    assert len(api_write_operations()) >= 20


@pytest.mark.django_db
def test_viewer_gets_403_on_every_api_write(viewer, api_as, catalog_objects):
    client = api_as(viewer)
    checked = []
    for method, template in api_write_operations():
        path = _api_path(template, catalog_objects)
        response = getattr(client, method)(path, {}, format="json")
        if (method, template) in READ_ONLY_POSTS:
            # Open to readers; with no body there is nothing to transform (400) or the
            # spec's tests run (200). Either way nothing is written (checked below).
            assert response.status_code in (200, 400), f"{method.upper()} {path}"
            checked.append(f"{method} {template}")
            continue
        assert response.status_code == 403, (
            f"{method.upper()} {path} answered {response.status_code}"
        )
        assert response["Content-Type"] == "application/problem+json"
        checked.append(f"{method} {template}")
    assert AuditEntry.objects.count() == 0
    assert len(checked) == len(api_write_operations())


def _ui_patterns(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _ui_patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            yield prefix + str(entry.pattern), entry


def _ui_path(route: str, objects: dict) -> str:
    kinds = {
        "systems": objects["system"].pk,
        "environments": objects["environment"].pk,
        "endpoints": objects["endpoint"].pk,
        "endpoint-checks": objects["check"].pk,
        "tokens": objects["token"].pk,
        "people": objects["token"].user_id,
        "test-results": objects["result"].pk,
        "test-runs": objects["run"].pk,
        "test-cases": objects["case"].pk,
        "defects": objects["defect"].pk,
        "known-findings": objects["finding"].pk,
        "test-schedules": objects["schedule"].pk,
        "mappings": objects["mapping_spec"].pk,
        "mapping-rows": objects["mapping_rule"].pk,
        "mapping-tests": objects["mapping_test"].pk,
        "lookup-tables": objects["lookup_table"].pk,
        "lookup-entries": objects["lookup_entry"].pk,
        "data-sources": objects["data_source"].pk,
        "reconciliation-jobs": objects["recon_job"].pk,
        "reconciliation-runs": objects["recon_run"].pk,
    }
    path = "/" + route.lstrip("^").rstrip("$")
    path = path.replace("<slug:slug>", objects["team"].slug)
    path = path.replace("<str:code>", objects["interface"].code).replace("<int:version>", "1")
    first = path.strip("/").split("/")[0] if path.strip("/") else ""
    if first == "accounts":
        first = path.strip("/").split("/")[1]
    return path.replace("<int:pk>", str(kinds.get(first, 1)))


WRITE_VIEW_SUFFIXES = (
    "_create",
    "_update",
    "_delete",
    "_check",
    "_upload",
    "_revoke",
    "_record",
    "_import",
    "_cancel",
)
# Browser POSTs that only read (a mapping's live preview, running its tests): open to
# every signed-in reader, as their API twins are (READ_ONLY_POSTS).
READ_ONLY_UI_POSTS = {"spec_preview", "mapping_tests_run"}


@pytest.mark.django_db
def test_viewer_gets_403_on_every_form_url(client, viewer, catalog_objects):
    client.force_login(viewer)
    walked = 0
    for route, pattern in _ui_patterns():
        if route.startswith(("api/", "demo-partner/")) or pattern.name in {"login", "logout"}:
            continue
        path = _ui_path(route, catalog_objects)
        is_write_view = pattern.name.endswith(WRITE_VIEW_SUFFIXES) or pattern.name == "tokens"
        for method in UNSAFE_METHODS:
            response = getattr(client, method)(path)
            # A write view refuses the viewer (403); a method it never accepts is 405 for everyone.
            expected = {403} if is_write_view and method == "post" else {403, 405}
            if pattern.name in READ_ONLY_UI_POSTS and method == "post":
                expected = {200}
            assert response.status_code in expected, (
                f"{method.upper()} {path} answered {response.status_code}"
            )
            walked += 1
        if is_write_view and pattern.name != "tokens":
            assert client.get(path).status_code in {403, 405}, (
                f"GET {path} shows a form to a viewer"
            )
    assert walked > 60
    assert AuditEntry.objects.count() == 0
    assert ApiToken.objects.filter(user=viewer).count() == 0


@pytest.mark.django_db
def test_engineer_cannot_change_another_teams_interface(engineer, api_as, interface_b):
    client = api_as(engineer)
    url = f"/api/v1/interfaces/{interface_b.code}/"
    assert client.get(url).status_code == 200  # the catalog is readable by all
    response = client.patch(url, {"name": "hijacked"}, format="json")
    assert response.status_code == 403
    assert client.delete(url).status_code == 403
    interface_b.refresh_from_db()
    assert interface_b.name == "Orders"


@pytest.mark.django_db
def test_engineer_cannot_create_for_another_team(engineer, api_as, team_b, interface_b):
    response = api_as(engineer).post(
        "/api/v1/interfaces/",
        {
            "code": "INT-777",
            "name": "x",
            "source_system": interface_b.source_system.name,
            "target_system": interface_b.target_system.name,
            "pattern": "sync_api",
            "platform": "kafka",
            "owner_team": team_b.slug,
        },
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "You may only create objects owned by your own teams."


@pytest.mark.django_db
def test_engineer_cannot_hand_an_interface_to_another_team(engineer, api_as, interface_a, team_b):
    response = api_as(engineer).patch(
        f"/api/v1/interfaces/{interface_a.code}/", {"owner_team": team_b.slug}, format="json"
    )
    assert response.status_code == 403
    interface_a.refresh_from_db()
    assert interface_a.owner_team.slug == "team-a"


@pytest.mark.django_db
def test_engineer_cannot_add_endpoint_to_another_teams_interface(
    engineer, api_as, interface_b, environment
):
    response = api_as(engineer).post(
        "/api/v1/endpoints/",
        {
            "interface": interface_b.code,
            "environment": environment.slug,
            "base_url": "https://x.example.com/",
        },
        format="json",
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_engineer_changes_own_teams_interface(engineer, api_as, interface_a):
    response = api_as(engineer).patch(
        f"/api/v1/interfaces/{interface_a.code}/", {"name": "Renamed"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["engineer", "lead"])
def test_only_admins_manage_environments_and_teams(request, persona, api_as, environment, team_a):
    client = api_as(request.getfixturevalue(persona))
    assert (
        client.post(
            "/api/v1/environments/", {"name": "Perf", "slug": "perf"}, format="json"
        ).status_code
        == 403
    )
    assert (
        client.patch(
            f"/api/v1/environments/{environment.slug}/",
            {"egress_allowlist": ["10.0.0.0/8"]},
            format="json",
        ).status_code
        == 403
    )
    assert (
        client.post("/api/v1/teams/", {"name": "X", "slug": "x"}, format="json").status_code == 403
    )
    assert client.delete(f"/api/v1/teams/{team_a.slug}/").status_code == 403


@pytest.mark.django_db
def test_admin_manages_environments(admin_user, api_as):
    response = api_as(admin_user).post(
        "/api/v1/environments/",
        {
            "name": "Perf",
            "slug": "perf",
            "position": 5,
            "egress_allowlist": ["10.20.0.0/16", "erp.corp.local"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["egress_allowlist"] == ["10.20.0.0/16", "erp.corp.local"]


@pytest.mark.django_db
def test_anonymous_requests_are_refused(client, interface_a):
    assert client.get("/api/v1/interfaces/").status_code in (401, 403)
    response = client.get("/interfaces/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_ui_hides_edit_controls_from_viewers(client, viewer, interface_a):
    client.force_login(viewer)
    page = client.get(f"/interfaces/{interface_a.code}/").content.decode()
    assert "Edit" not in page and "Delete" not in page and "Upload spec" not in page
    assert "New interface" not in client.get("/interfaces/").content.decode()
