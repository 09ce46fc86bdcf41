"""Who may write what through the mappings API: every write endpoint for a viewer, an
engineer and a lead of the owning team, an admin, and an engineer of another team. The
refused get 403 and change nothing; transform and run-tests are reads anyone may call."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import AuditEntry
from apps.mappings.models import (
    FieldRule,
    LookupEntry,
    LookupTable,
    MappingSpec,
    MappingTest,
    SpecStatus,
)
from tests.accounts.test_permissions import READ_ONLY_POSTS, api_write_operations
from tests.mappings.api_support import make_spec

pytestmark = pytest.mark.django_db

PERSONAS = ["viewer", "engineer", "lead", "admin_user", "engineer_b"]
TEAM_WRITERS = {"engineer", "lead", "admin_user"}
APPROVERS = {"lead", "admin_user"}
SHEET = b"target field,source field\nid,number\n"


@pytest.fixture
def world(interface_a, team_a):
    draft = make_spec(
        interface_a,
        rows=[("id", ["number"]), ("total", ["amount"])],
        tests=[("t", {"number": "A"}, {"id": "A"})],
    )
    review = make_spec(interface_a, name="Reviewed", status=SpecStatus.IN_REVIEW)
    add_rule = FieldRule.objects.create(
        spec=review, position=1, target_path="id", source_paths=["number"]
    )
    approved = make_spec(interface_a, name="Approved", status=SpecStatus.APPROVED)
    table = LookupTable.objects.create(name="countries", owner_team=team_a)
    entry = LookupEntry.objects.create(table=table, key="Germany", value="DE")
    return {
        "draft": draft,
        "review": review,
        "review_rule": add_rule,
        "approved": approved,
        "rule": draft.rules.get(target_path="total"),
        "test": draft.tests.get(),
        "table": table,
        "entry": entry,
    }


def file(name="sheet.csv", content=SHEET):
    return {"file": SimpleUploadedFile(name, content)}


# Each operation: (method, path template, body or a function of the world giving one,
# format, who may, status on success).
OPERATIONS = {
    "create spec": ("post", "/api/v1/mapping-specs/", {"interface": "INT-042", "name": "New"}),
    "patch spec": (
        "patch",
        "/api/v1/mapping-specs/{draft}/",
        {"description": "x", "revision": 1},
    ),
    "put spec": (
        "put",
        "/api/v1/mapping-specs/{draft}/",
        {"interface": "INT-042", "name": "Orders to ERP", "description": "x", "revision": 1},
    ),
    "delete spec": ("delete", "/api/v1/mapping-specs/{draft}/", None),
    "submit": ("post", "/api/v1/mapping-specs/{draft}/submit/", {"revision": 1}),
    "return to draft": (
        "post",
        "/api/v1/mapping-specs/{review}/return-to-draft/",
        {"revision": 1},
    ),
    "approve": ("post", "/api/v1/mapping-specs/{review}/approve/", {"revision": 1}, APPROVERS),
    "new draft": ("post", "/api/v1/mapping-specs/{approved}/new-draft/", None),
    "accept suggestions": (
        "post",
        "/api/v1/mapping-specs/{draft}/suggestions/accept/",
        {"revision": 1, "pairs": [{"target_path": "customerName", "source_path": "customer_name"}]},
    ),
    "import sheet": (
        "post",
        "/api/v1/mapping-specs/{draft}/sheet/",
        lambda: {**file(), "revision": 1},
        "multipart",
    ),
    "create rule": (
        "post",
        "/api/v1/mapping-rules/",
        lambda w: {
            "spec": w["draft"].pk,
            "target_path": "customerName",
            "source_paths": ["customer_name"],
            "revision": 1,
        },
    ),
    "patch rule": ("patch", "/api/v1/mapping-rules/{rule}/", {"notes": "x", "revision": 1}),
    "put rule": (
        "put",
        "/api/v1/mapping-rules/{rule}/",
        lambda w: {
            "spec": w["draft"].pk,
            "target_path": "total",
            "source_paths": ["amount"],
            "revision": 1,
        },
    ),
    "delete rule": ("delete", "/api/v1/mapping-rules/{rule}/?revision=1", None),
    "create test": (
        "post",
        "/api/v1/mapping-tests/",
        lambda w: {"spec": w["draft"].pk, "name": "new", "source_payload": {}},
    ),
    "patch test": ("patch", "/api/v1/mapping-tests/{test}/", {"notes": "x"}),
    "put test": (
        "put",
        "/api/v1/mapping-tests/{test}/",
        lambda w: {"spec": w["draft"].pk, "name": "t2"},
    ),
    "delete test": ("delete", "/api/v1/mapping-tests/{test}/", None),
    "create table": ("post", "/api/v1/lookup-tables/", {"name": "uoms", "owner_team": "team-a"}),
    "patch table": ("patch", "/api/v1/lookup-tables/{table}/", {"description": "x"}),
    "put table": (
        "put",
        "/api/v1/lookup-tables/{table}/",
        {"name": "countries", "owner_team": "team-a", "description": "x"},
    ),
    "delete table": ("delete", "/api/v1/lookup-tables/{table}/", None),
    "import table": (
        "post",
        "/api/v1/lookup-tables/{table}/import/",
        lambda: file("countries.csv", b"key,value\nItaly,IT\n"),
        "multipart",
    ),
    "create entry": (
        "post",
        "/api/v1/lookup-tables/{table}/entries/",
        {"key": "Spain", "value": "ES"},
    ),
    "patch entry": ("patch", "/api/v1/lookup-tables/{table}/entries/{entry}/", {"value": "x"}),
    "put entry": (
        "put",
        "/api/v1/lookup-tables/{table}/entries/{entry}/",
        {"key": "Germany", "value": "x"},
    ),
    "delete entry": ("delete", "/api/v1/lookup-tables/{table}/entries/{entry}/", None),
}


def operation(name):
    method, path, body, *rest = OPERATIONS[name]
    fmt = "json"
    allowed = TEAM_WRITERS
    for extra in rest:
        if isinstance(extra, str):
            fmt = extra
        else:
            allowed = extra
    return method, path, body, fmt, allowed


def call(client, name, world):
    method, path, body, fmt, _ = operation(name)
    url = path.format(**{key: value.pk for key, value in world.items()})
    if callable(body):
        body = body(world) if body.__code__.co_argcount else body()
    return getattr(client, method)(url, body, format=fmt)


def state():
    """Everything a write could change."""
    return (
        list(
            MappingSpec.objects.order_by("pk").values_list(
                "pk", "revision", "status", "description"
            )
        ),
        list(FieldRule.objects.order_by("pk").values_list("pk", "target_path", "notes")),
        list(MappingTest.objects.order_by("pk").values_list("pk", "name", "notes")),
        list(LookupTable.objects.order_by("pk").values_list("pk", "name", "description")),
        list(LookupEntry.objects.order_by("pk").values_list("pk", "key", "value")),
    )


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_who_may_write_through_the_mappings_api(request, api_as, world, persona, name):
    client = api_as(request.getfixturevalue(persona))
    before = state()
    response = call(client, name, world)
    if persona in operation(name)[4]:
        assert response.status_code in (200, 201, 204), (name, response.json())
        assert state() != before
    else:
        assert response.status_code == 403, (name, response.status_code)
        assert response["Content-Type"] == "application/problem+json"
        assert state() == before
        assert AuditEntry.objects.count() == 0


def test_every_mappings_write_operation_is_walked(db):
    templates = {
        (method, path)
        for method, path in api_write_operations()
        if path.startswith(("/api/v1/mapping-", "/api/v1/lookup-tables/"))
    }
    walked = {(method, _template(path)) for method, path, *_ in OPERATIONS.values()}
    assert templates - READ_ONLY_POSTS == walked


def _template(path: str) -> str:
    """The OpenAPI template of an operation's path."""
    path = path.split("?")[0].replace("{table}/entries/", "{table_id}/entries/")
    path = path.replace("{entry}", "{entry_id}")
    for name in ("draft", "review", "approved", "rule", "test", "table"):
        path = path.replace("{" + name + "}", "{id}")
    return path


@pytest.mark.parametrize("persona", PERSONAS)
def test_reads_that_are_posts_are_open_to_every_reader(request, api_as, world, persona):
    client = api_as(request.getfixturevalue(persona))
    before = state()
    spec = world["approved"]
    transformed = client.post(
        f"/api/v1/mapping-specs/{spec.pk}/transform/", {"source": {}}, format="json"
    )
    assert transformed.status_code == 200
    ran = client.post(f"/api/v1/mapping-specs/{world['draft'].pk}/run-tests/")
    assert ran.status_code == 200 and ran.json()["passed"] == 1
    assert state() == before
    assert AuditEntry.objects.count() == 0
