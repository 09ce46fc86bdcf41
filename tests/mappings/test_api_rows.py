"""Rows and mapping tests over the API, and mapping sheets out of and into a spec: writes
carry the spec's revision, bad rows are refused field by field, frozen specs take nothing,
and a bad sheet names its rows and columns and changes nothing."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.models import AuditEntry
from apps.mappings import sheets
from apps.mappings.models import FieldRule, MappingSpec, MappingTest, SpecStatus
from tests.mappings.api_support import add_rows, count_queries, fresh, make_spec

pytestmark = pytest.mark.django_db

RULES = "/api/v1/mapping-rules/"
TESTS = "/api/v1/mapping-tests/"
SPECS = "/api/v1/mapping-specs/"

GOOD_SHEET = (
    b"target field,target type,required,source field,transformation rule,lookup table,default,notes,example\n"
    b"id,string,yes,number,,,,The order number,SO-1\n"
    b"total,number,no,amount,arithmetic: * 2,,,,\n"
)


@pytest.fixture
def spec(interface_a):
    return make_spec(interface_a, rows=[("id", ["number"]), ("total", ["amount"])])


def freeze(spec):
    MappingSpec.objects.filter(pk=spec.pk).update(status=SpecStatus.APPROVED)


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


def test_rows_are_listed_for_one_spec_in_row_order(api_as, viewer, spec, interface_b):
    make_spec(interface_b, rows=[("other", ["x"])])
    FieldRule.objects.filter(spec=spec, target_path="id").update(position=7)
    response = api_as(viewer).get(f"{RULES}?spec={spec.pk}")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["position"], r["target_path"], r["spec_revision"]) for r in results] == [
        (2, "total", 1),
        (7, "id", 1),
    ]


def test_listing_rows_needs_a_spec(api_as, viewer, spec):
    response = api_as(viewer).get(RULES)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "spec", "message": "Give the id of a mapping spec.", "code": "invalid"}
    ]


def test_listing_rows_costs_the_same_queries_for_many_rows(api_as, viewer, spec):
    client = api_as(viewer)
    url = f"{RULES}?spec={spec.pk}"
    client.get(url)
    few, _ = count_queries(lambda: client.get(url))
    add_rows(spec, [(f"extra{n}", ["number"]) for n in range(40)], start=3)
    many, response = count_queries(lambda: client.get(url))
    assert response.json()["count"] == 42
    # The token with its user, the count, one page of rows with the spec's revision.
    assert few == many == 3


def test_a_new_row_goes_last_and_answers_the_new_revision(api_as, engineer, spec):
    response = api_as(engineer).post(
        RULES,
        {
            "spec": spec.pk,
            "target_path": "customerName",
            "source_paths": ["customer_name"],
            "kind": "upper",
            "revision": 1,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {
        "id": body["id"],
        "spec": spec.pk,
        "position": 3,
        "target_path": "customerName",
        "source_paths": ["customer_name"],
        "kind": "upper",
        "params": {},
        "required": False,
        "target_type": "",
        "notes": "",
        "example": "",
        "spec_revision": 2,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert fresh(spec).revision == 2


def test_rows_are_edited_and_deleted_with_the_revision(api_as, engineer, spec):
    client = api_as(engineer)
    rule = spec.rules.get(target_path="total")
    patched = client.patch(
        f"{RULES}{rule.pk}/",
        {"kind": "arithmetic", "params": {"op": "*", "operand": 2}, "revision": 1},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["kind"], patched.json()["spec_revision"]) == ("arithmetic", 2)

    put = client.put(
        f"{RULES}{rule.pk}/",
        {
            "spec": spec.pk,
            "target_path": "total",
            "source_paths": ["amount"],
            "kind": "copy",
            "params": {},
            "revision": 2,
        },
        format="json",
    )
    assert put.status_code == 200, put.json()
    assert (put.json()["kind"], put.json()["spec_revision"]) == ("copy", 3)

    deleted = client.delete(f"{RULES}{rule.pk}/?revision=3")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": rule.pk, "spec_revision": 4}
    assert list(spec.rules.values_list("target_path", flat=True)) == ["id"]

    other = spec.rules.get()
    by_body = client.delete(f"{RULES}{other.pk}/", {"revision": 4}, format="json")
    assert by_body.json() == {"id": other.pk, "spec_revision": 5}


def test_a_bad_row_is_refused_field_by_field(api_as, engineer, spec):
    response = api_as(engineer).post(
        RULES,
        {
            "spec": spec.pk,
            "target_path": "a[",
            "source_paths": ["x", "y"],
            "kind": "pad",
            "params": {"width": "wide"},
            "revision": 1,
        },
        format="json",
    )
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["errors"]]
    assert set(fields) == {"target_path", "source_paths", "params"}
    assert not spec.rules.filter(target_path="a[").exists()
    assert fresh(spec).revision == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_path": "x", "revision": 1}, "spec"),
        ({"spec": 999999, "target_path": "x", "revision": 1}, "spec"),
        ({"spec": "SPEC", "target_path": "x", "source_paths": "number"}, "source_paths"),
        ({"spec": "SPEC", "target_path": "x", "kind": "magic", "revision": 1}, "kind"),
        ({"spec": "SPEC", "target_path": "x", "params": [1], "revision": 1}, "params"),
        ({"spec": "SPEC", "target_path": "x"}, "revision"),
        ({"spec": "SPEC", "target_path": "x", "revision": "latest"}, "revision"),
        (
            {"spec": "SPEC", "target_path": "id", "source_paths": ["number"], "revision": 1},
            "target_path",
        ),
    ],
)
def test_a_bad_row_request_names_the_field(api_as, engineer, spec, body, field):
    body = {name: spec.pk if value == "SPEC" else value for name, value in body.items()}
    response = api_as(engineer).post(RULES, body, format="json")
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert spec.rules.count() == 2 and fresh(spec).revision == 1


def test_two_clients_editing_rows_the_second_gets_409(api_as, engineer, lead, spec):
    rule = spec.rules.get(target_path="total")
    first = api_as(engineer).patch(
        f"{RULES}{rule.pk}/", {"notes": "first", "revision": 1}, format="json"
    )
    assert first.status_code == 200
    second = api_as(lead).post(
        RULES,
        {"spec": spec.pk, "target_path": "customerName", "source_paths": ["c"], "revision": 1},
        format="json",
    )
    assert second.status_code == 409
    assert (second.json()["current_revision"], second.json()["changed_by"]) == (2, "engineer")
    stale_delete = api_as(lead).delete(f"{RULES}{rule.pk}/?revision=1")
    assert stale_delete.status_code == 409
    assert spec.rules.count() == 2 and fresh(spec).revision == 2


def test_rows_of_an_approved_spec_are_frozen(api_as, lead, spec):
    freeze(spec)
    client = api_as(lead)
    rule = spec.rules.get(target_path="total")
    created = client.post(
        RULES,
        {"spec": spec.pk, "target_path": "x", "source_paths": ["y"], "revision": 1},
        format="json",
    )
    patched = client.patch(f"{RULES}{rule.pk}/", {"notes": "x", "revision": 1}, format="json")
    deleted = client.delete(f"{RULES}{rule.pk}/?revision=1")
    for response in (created, patched, deleted):
        assert response.status_code == 400
        assert "approved and frozen" in response.json()["detail"]
    assert spec.rules.count() == 2


def test_a_row_cannot_move_to_another_spec(api_as, engineer, spec, interface_a):
    other = make_spec(interface_a, name="Other")
    rule = spec.rules.get(target_path="total")
    response = api_as(engineer).patch(
        f"{RULES}{rule.pk}/", {"spec": other.pk, "revision": 1}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "A row cannot move to another spec."


# --------------------------------------------------------------------------------------
# Mapping tests
# --------------------------------------------------------------------------------------


def test_mapping_tests_are_created_listed_changed_and_deleted(api_as, engineer, spec):
    client = api_as(engineer)
    created = client.post(
        TESTS,
        {
            "spec": spec.pk,
            "name": "simple",
            "source_payload": {"number": "A1", "amount": 5},
            "expected_payload": {"id": "A1", "total": 5},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    test_id = created.json()["id"]
    listed = client.get(f"{TESTS}?spec={spec.pk}").json()
    assert [t["name"] for t in listed["results"]] == ["simple"]
    patched = client.patch(f"{TESTS}{test_id}/", {"notes": "why"}, format="json")
    assert patched.status_code == 200 and patched.json()["notes"] == "why"
    put = client.put(
        f"{TESTS}{test_id}/",
        {"spec": spec.pk, "name": "renamed", "source_payload": {}, "expected_payload": {}},
        format="json",
    )
    assert put.status_code == 200 and put.json()["name"] == "renamed"
    assert client.delete(f"{TESTS}{test_id}/").status_code == 204
    assert not MappingTest.objects.exists()
    assert AuditEntry.objects.filter(action="delete", object_id=str(test_id)).exists()


def test_listing_mapping_tests_costs_the_same_queries(api_as, viewer, spec):
    client = api_as(viewer)
    client.get(TESTS)
    MappingTest.objects.create(spec=spec, name="t", source_payload={})
    few, _ = count_queries(lambda: client.get(f"{TESTS}?spec={spec.pk}"))
    for n in range(20):
        MappingTest.objects.create(spec=spec, name=f"t{n}", source_payload={})
    many, response = count_queries(lambda: client.get(f"{TESTS}?spec={spec.pk}"))
    assert response.json()["count"] == 21
    # The token with its user, the count, one page of tests.
    assert few == many == 3


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "x"}, "spec", "This field is required."),
        ({"spec": "SPEC", "name": ""}, "name", "This field may not be blank."),
        (
            {"spec": "SPEC", "name": "x", "source_text": "<a/>"},
            "source_text",
            "A JSON source goes in source_payload.",
        ),
        (
            {"spec": "SPEC", "name": "dupe"},
            "name",
            "INT-042 Orders to ERP v1 already has a test 'dupe'.",
        ),
    ],
)
def test_a_bad_mapping_test_names_the_field(api_as, engineer, spec, body, field, message):
    MappingTest.objects.create(spec=spec, name="dupe", source_payload={})
    body = {name: spec.pk if value == "SPEC" else value for name, value in body.items()}
    response = api_as(engineer).post(TESTS, body, format="json")
    assert response.status_code == 400
    assert (response.json()["errors"][0]["field"], response.json()["errors"][0]["message"]) == (
        field,
        message,
    )
    assert MappingTest.objects.count() == 1


def test_a_mapping_test_cannot_move_to_another_spec(api_as, engineer, spec, interface_a):
    other = make_spec(interface_a, name="Other")
    test = MappingTest.objects.create(spec=spec, name="t", source_payload={})
    response = api_as(engineer).patch(f"{TESTS}{test.pk}/", {"spec": other.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "A mapping test cannot move to another spec."


def test_mapping_tests_of_an_approved_spec_are_frozen(api_as, lead, spec):
    test = MappingTest.objects.create(spec=spec, name="t", source_payload={})
    freeze(spec)
    client = api_as(lead)
    created = client.post(TESTS, {"spec": spec.pk, "name": "new"}, format="json")
    patched = client.patch(f"{TESTS}{test.pk}/", {"notes": "x"}, format="json")
    deleted = client.delete(f"{TESTS}{test.pk}/")
    for response in (created, patched, deleted):
        assert response.status_code == 400
        assert "approved and frozen" in response.json()["detail"]
    assert list(MappingTest.objects.values_list("name", "notes")) == [("t", "")]


# --------------------------------------------------------------------------------------
# Mapping sheets
# --------------------------------------------------------------------------------------


def upload(content: bytes, name="orders.csv"):
    return SimpleUploadedFile(name, content)


def test_the_sheet_downloads_as_csv(api_as, viewer, spec):
    FieldRule.objects.filter(spec=spec, target_path="id").update(notes="=HYPERLINK(1)")
    response = api_as(viewer).get(f"{SPECS}{spec.pk}/sheet/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="INT-042-orders-to-erp-v1.csv"'
    )
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("target field,")
    assert "'=HYPERLINK(1)" in text
    rows = sheets.read_sheet(response.content, "x.csv").rows
    assert [(row.target_path, row.source_paths) for row in rows] == [
        ("id", ["number"]),
        ("total", ["amount"]),
    ]


def test_the_sheet_downloads_as_xlsx(api_as, viewer, spec):
    response = api_as(viewer).get(f"{SPECS}{spec.pk}/sheet/?format=xlsx")
    assert response.status_code == 200
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response["Content-Disposition"].endswith('-v1.xlsx"')
    rows = sheets.read_sheet(response.content, "x.xlsx").rows
    assert [row.target_path for row in rows] == ["id", "total"]


def test_an_unknown_sheet_format_is_400(api_as, viewer, spec):
    response = api_as(viewer).get(f"{SPECS}{spec.pk}/sheet/?format=pdf")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "format", "message": "csv or xlsx.", "code": "invalid"}
    ]


def test_a_missing_spec_sheet_is_404(api_as, viewer):
    assert api_as(viewer).get(f"{SPECS}999999/sheet/?format=csv").status_code == 404


def test_a_sheet_import_replaces_the_rows(api_as, engineer, spec):
    response = api_as(engineer).post(
        f"{SPECS}{spec.pk}/sheet/",
        {"file": upload(GOOD_SHEET), "revision": 1},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "dry_run": False,
        "rows": 2,
        "replaced": 2,
        "ignored_columns": [],
        "spec_revision": 2,
        "problems": [],
    }
    rules = list(fresh(spec).rules.all())
    assert [(r.target_path, r.kind, r.notes) for r in rules] == [
        ("id", "copy", "The order number"),
        ("total", "arithmetic", ""),
    ]


def test_an_xlsx_export_imports_back(api_as, engineer, spec, interface_a):
    client = api_as(engineer)
    exported = client.get(f"{SPECS}{spec.pk}/sheet/?format=xlsx").content
    other = make_spec(interface_a, name="Copy")
    response = client.post(
        f"{SPECS}{other.pk}/sheet/",
        {"file": upload(exported, "copy.xlsx"), "revision": 1},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert list(other.rules.values_list("target_path", flat=True)) == ["id", "total"]


def test_a_dry_run_reports_the_rows_and_saves_nothing(api_as, engineer, spec):
    sheet = GOOD_SHEET + b"countryCode,string,no,country,lookup,nowhere,,,\n"
    response = api_as(engineer).post(
        f"{SPECS}{spec.pk}/sheet/",
        {"file": upload(sheet), "dry_run": "true"},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["dry_run"], body["rows"], body["replaced"], body["spec_revision"]) == (
        True,
        3,
        None,
        1,
    )
    assert [row["target_path"] for row in body["sheet_rows"]] == ["id", "total", "countryCode"]
    assert body["sheet_rows"][0]["row"] == 2
    assert [(p["kind"], p["row"], p["target_path"]) for p in body["problems"]] == [
        ("compile", 3, "countryCode")
    ]
    assert fresh(spec).revision == 1
    assert list(spec.rules.values_list("target_path", "kind")) == [
        ("id", "copy"),
        ("total", "copy"),
    ]


def test_a_bad_sheet_lists_every_problem_by_row_and_column(api_as, engineer, spec):
    bad = GOOD_SHEET + b"id,string,maybe,other,,,,,\n"
    response = api_as(engineer).post(
        f"{SPECS}{spec.pk}/sheet/", {"file": upload(bad), "revision": 1}, format="multipart"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["field"] for e in errors} == {"file"}
    messages = " ".join(e["message"] for e in errors)
    assert 'Row 4, column "required"' in messages
    assert "id" in messages
    assert list(spec.rules.values_list("target_path", "kind")) == [
        ("id", "copy"),
        ("total", "copy"),
    ]
    assert fresh(spec).revision == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"revision": 1}, "file"),
        ({"file": "FILE"}, "revision"),
        ({"file": "FILE", "revision": "x"}, "revision"),
    ],
)
def test_a_sheet_import_needs_a_file_and_a_revision(api_as, engineer, spec, body, field):
    body = {k: upload(GOOD_SHEET) if v == "FILE" else v for k, v in body.items()}
    response = api_as(engineer).post(f"{SPECS}{spec.pk}/sheet/", body, format="multipart")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert fresh(spec).revision == 1


def test_a_sheet_import_over_an_older_revision_is_409(api_as, engineer, spec):
    MappingSpec.objects.filter(pk=spec.pk).update(revision=4)
    response = api_as(engineer).post(
        f"{SPECS}{spec.pk}/sheet/", {"file": upload(GOOD_SHEET), "revision": 3}, format="multipart"
    )
    assert response.status_code == 409
    assert response.json()["current_revision"] == 4
    assert list(spec.rules.values_list("kind", flat=True)) == ["copy", "copy"]


def test_an_approved_spec_takes_no_sheet(api_as, lead, spec):
    freeze(spec)
    for extra in ({"revision": 1}, {"dry_run": "true"}):
        response = api_as(lead).post(
            f"{SPECS}{spec.pk}/sheet/", {"file": upload(GOOD_SHEET), **extra}, format="multipart"
        )
        assert response.status_code == 400
        assert "approved and frozen" in response.json()["detail"]
    assert list(spec.rules.values_list("kind", flat=True)) == ["copy", "copy"]


def test_a_workbook_with_macros_is_refused(api_as, engineer, spec):
    response = api_as(engineer).post(
        f"{SPECS}{spec.pk}/sheet/",
        {"file": upload(io.BytesIO(b"PK\x03\x04junk").getvalue(), "sheet.xlsm"), "revision": 1},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "file"
