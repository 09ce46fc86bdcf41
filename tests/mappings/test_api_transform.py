"""The reference transformation over the API (JSON, XML and CSV specs; raw bodies and JSON
wrapped), running mapping tests, coverage, and suggestions with their acceptance."""

import pytest

from apps.core.models import AuditEntry
from apps.mappings.models import FieldRule, LookupEntry, LookupTable, MappingSpec, SpecStatus
from tests.mappings.api_support import add_rows, fresh, make_spec

pytestmark = pytest.mark.django_db

SPECS = "/api/v1/mapping-specs/"


@pytest.fixture
def json_spec(interface_a):
    table = LookupTable.objects.create(name="countries")
    LookupEntry.objects.create(table=table, key="Germany", value="DE")
    return make_spec(
        interface_a,
        rows=[
            ("id", ["number"]),
            ("total", ["amount", "divisor"], "arithmetic", {"op": "/"}),
            ("countryCode", ["country"], "lookup", {"table": "countries"}),
        ],
        tests=[
            (
                "passes",
                {"number": "A1", "amount": 10, "divisor": 4, "country": "Germany"},
                {"id": "A1", "total": 2.5, "countryCode": "DE"},
            ),
            (
                "fails",
                {"number": "A2", "amount": 1, "divisor": 1, "country": "Germany"},
                {"id": "A2", "total": 2, "countryCode": "DE"},
            ),
        ],
    )


@pytest.fixture
def xml_spec(interface_a):
    return make_spec(
        interface_a,
        name="XML orders",
        source_format="xml",
        target_format="xml",
        source_schema=None,
        target_schema=None,
        rows=[
            ("Invoice.Id", ["Order.Number"]),
            ("Invoice.Quantity", ["Order.Qty"], "cast", {"to": "integer"}),
        ],
    )


@pytest.fixture
def csv_spec(interface_a):
    return make_spec(
        interface_a,
        name="CSV orders",
        source_format="csv",
        target_format="csv",
        source_schema=None,
        target_schema=None,
        rows=[("id", ["number"]), ("name", ["customer"], "upper")],
    )


def transform(client, spec, body, **options):
    return client.post(f"{SPECS}{spec.pk}/transform/", body, **options)


# --------------------------------------------------------------------------------------
# Transform
# --------------------------------------------------------------------------------------


def test_a_json_payload_is_transformed(api_as, viewer, json_spec):
    response = transform(
        api_as(viewer),
        json_spec,
        {"source": {"number": "A1", "amount": 10, "divisor": 4, "country": "Germany"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "output": {"id": "A1", "total": 2.5, "countryCode": "DE"},
        "rendered": None,
        "problems": [],
    }
    assert AuditEntry.objects.count() == 0


def test_json_text_is_read_as_the_source(api_as, viewer, json_spec):
    response = transform(
        api_as(viewer),
        json_spec,
        {"source": '{"number": "A1", "amount": 1, "divisor": 1, "country": "Germany"}'},
        format="json",
    )
    assert response.json()["output"] == {"id": "A1", "total": 1, "countryCode": "DE"}


def test_a_division_by_zero_names_the_row_and_is_not_a_500(api_as, viewer, json_spec):
    response = transform(
        api_as(viewer),
        json_spec,
        {"source": {"number": "A1", "amount": 5, "divisor": 0, "country": "Germany"}},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["output"] == {"id": "A1", "countryCode": "DE"}
    assert body["problems"] == [
        {"kind": "rule", "row": 2, "target_path": "total", "message": "division by zero (5 / 0)"}
    ]


def test_a_payload_that_breaks_the_target_schema_names_row_and_path(api_as, viewer, json_spec):
    response = transform(
        api_as(viewer),
        json_spec,
        {"source": {"number": "TOO-LONG", "amount": 1, "divisor": 1, "country": "Mars"}},
        format="json",
    )
    assert response.status_code == 200
    problems = response.json()["problems"]
    assert [(p["kind"], p["row"], p["target_path"]) for p in problems] == [
        ("rule", 3, "countryCode"),
        ("schema", 1, "id"),
    ]
    assert "Mars" in problems[0]["message"]
    assert "TOO-LONG" in problems[1]["message"]


def test_a_missing_required_target_field_is_a_schema_problem(api_as, viewer, json_spec):
    response = transform(
        api_as(viewer), json_spec, {"source": {"amount": 1, "divisor": 1}}, format="json"
    )
    problems = response.json()["problems"]
    assert [(p["kind"], p["row"], p["target_path"]) for p in problems] == [("schema", 1, "id")]
    assert "required" in problems[0]["message"]


def test_an_xml_document_is_transformed_from_the_raw_body(api_as, viewer, xml_spec):
    response = transform(
        api_as(viewer),
        xml_spec,
        b"<Order><Number>A1</Number><Qty>3</Qty></Order>",
        content_type="application/xml",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["output"] == {"Invoice": {"Id": "A1", "Quantity": 3}}
    assert body["rendered"] == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Invoice><Id>A1</Id><Quantity>3</Quantity></Invoice>"
    )
    assert body["ok"] is True


def test_an_xml_document_is_transformed_from_text_xml_and_from_json(api_as, viewer, xml_spec):
    client = api_as(viewer)
    raw = transform(client, xml_spec, "<Order><Number>A1</Number></Order>", content_type="text/xml")
    wrapped = transform(
        client, xml_spec, {"source": "<Order><Number>A1</Number></Order>"}, format="json"
    )
    tree = transform(client, xml_spec, {"source": {"Order": {"Number": "A1"}}}, format="json")
    assert raw.json() == wrapped.json() == tree.json()
    assert raw.json()["output"] == {"Invoice": {"Id": "A1"}}


def test_bad_xml_is_a_source_problem(api_as, viewer, xml_spec):
    response = transform(
        api_as(viewer), xml_spec, "<Order><Number>", content_type="application/xml"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["output"] is None and body["ok"] is False
    assert [(p["kind"], p["row"]) for p in body["problems"]] == [("source", None)]


def test_a_bad_cast_in_xml_names_the_row(api_as, viewer, xml_spec):
    body = transform(
        api_as(viewer),
        xml_spec,
        "<Order><Number>A1</Number><Qty>three</Qty></Order>",
        content_type="application/xml",
    ).json()
    assert body["output"] == {"Invoice": {"Id": "A1"}}
    assert [(p["kind"], p["row"], p["target_path"]) for p in body["problems"]] == [
        ("rule", 2, "Invoice.Quantity")
    ]


def test_a_csv_record_is_transformed_from_the_raw_body(api_as, viewer, csv_spec):
    response = transform(
        api_as(viewer), csv_spec, "number,customer\nA1,acme\n", content_type="text/csv"
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "ok": True,
        "output": {"id": "A1", "name": "ACME"},
        "rendered": "id,name\r\nA1,ACME\r\n",
        "problems": [],
    }


def test_a_csv_record_is_transformed_from_json(api_as, viewer, csv_spec):
    response = transform(
        api_as(viewer), csv_spec, {"source": "number,customer\nA1,acme\n"}, format="json"
    )
    assert response.json()["rendered"] == "id,name\r\nA1,ACME\r\n"


def test_an_approved_version_transforms_too(api_as, viewer, csv_spec):
    MappingSpec.objects.filter(pk=csv_spec.pk).update(status=SpecStatus.APPROVED)
    response = transform(
        api_as(viewer), csv_spec, "number,customer\nA1,b\n", content_type="text/csv"
    )
    assert response.status_code == 200 and response.json()["ok"] is True


@pytest.mark.parametrize(
    ("body", "options"),
    [
        ({}, {"format": "json"}),
        ({"source": None}, {"format": "json"}),
        ([1, 2], {"format": "json"}),
        (b"", {"content_type": "text/csv"}),
        (b"  \n", {"content_type": "text/csv"}),
    ],
)
def test_a_request_without_a_source_is_400(api_as, viewer, csv_spec, body, options):
    response = transform(api_as(viewer), csv_spec, body, **options)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["source"]


def test_a_body_in_another_format_than_the_spec_reads_is_400(api_as, viewer, csv_spec):
    response = transform(api_as(viewer), csv_spec, "<a/>", content_type="application/xml")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "source",
            "message": 'INT-042 CSV orders v1 reads CSV record; send it as text/csv or as "source" in a JSON body.',
            "code": "invalid",
        }
    ]


def test_malformed_json_is_400(api_as, viewer, json_spec):
    response = transform(api_as(viewer), json_spec, "{nope", content_type="application/json")
    assert response.status_code == 400


def test_an_unknown_content_type_is_415(api_as, viewer, json_spec):
    response = transform(api_as(viewer), json_spec, "x", content_type="application/pdf")
    assert response.status_code == 415


def test_a_spec_that_does_not_compile_gives_its_problems(api_as, viewer, json_spec):
    add_rows(
        json_spec, [("customerName", ["customer_name"], "lookup", {"table": "nowhere"})], start=4
    )
    body = transform(api_as(viewer), json_spec, {"source": {}}, format="json").json()
    assert body["output"] is None
    assert [(p["kind"], p["row"], p["target_path"]) for p in body["problems"]] == [
        ("compile", 4, "customerName")
    ]


@pytest.mark.parametrize("persona", ["viewer", "engineer_b", "engineer", "admin_user"])
def test_anyone_who_reads_the_spec_may_transform_and_run_its_tests(
    request, api_as, json_spec, persona
):
    client = api_as(request.getfixturevalue(persona))
    assert (
        transform(client, json_spec, {"source": {"number": "A"}}, format="json").status_code == 200
    )
    assert client.post(f"{SPECS}{json_spec.pk}/run-tests/").status_code == 200
    assert AuditEntry.objects.count() == 0
    assert fresh(json_spec).revision == 1


def test_anonymous_callers_cannot_transform(client, json_spec):
    response = client.post(
        f"{SPECS}{json_spec.pk}/transform/", {"source": {}}, content_type="application/json"
    )
    assert response.status_code in (401, 403)


# --------------------------------------------------------------------------------------
# Mapping tests
# --------------------------------------------------------------------------------------


def test_run_tests_reports_each_test_and_totals(api_as, viewer, json_spec):
    response = api_as(viewer).post(f"{SPECS}{json_spec.pk}/run-tests/")
    assert response.status_code == 200
    body = response.json()
    assert (body["compiles"], body["total"], body["passed"], body["failed"]) == (True, 2, 1, 1)
    assert body["problems"] == []
    failing, passing = body["outcomes"]
    assert passing["name"] == "passes" and passing["passed"] is True
    assert failing == {
        "id": failing["id"],
        "name": "fails",
        "passed": False,
        "output": {"id": "A2", "total": 1, "countryCode": "DE"},
        "problems": [],
        "differences": [{"path": "total", "change": "changed", "expected": 2, "actual": 1}],
    }


def test_run_tests_of_a_spec_that_does_not_compile_gives_compile_problems(
    api_as, viewer, json_spec
):
    FieldRule.objects.filter(spec=json_spec, target_path="id").update(source_paths=["nosuch"])
    body = api_as(viewer).post(f"{SPECS}{json_spec.pk}/run-tests/").json()
    assert (body["compiles"], body["total"], body["passed"], body["failed"]) == (False, 2, 0, 0)
    assert body["outcomes"] == []
    assert [(p["kind"], p["row"], p["target_path"]) for p in body["problems"]] == [
        ("compile", 1, "id")
    ]


# --------------------------------------------------------------------------------------
# Coverage
# --------------------------------------------------------------------------------------


def test_coverage_reports_on_the_spec(api_as, viewer, json_spec):
    response = api_as(viewer).get(f"{SPECS}{json_spec.pk}/coverage/")
    assert response.status_code == 200
    body = response.json()
    assert (body["spec_id"], body["revision"], body["compiles"]) == (json_spec.pk, 1, True)
    assert [f["path"] for f in body["unused_source_fields"]] == ["customer_name"]
    assert body["summary"]["rows"] == 3 and body["summary"]["tests"] == 2
    assert body["rows_not_exercised"] == []


# --------------------------------------------------------------------------------------
# Suggestions
# --------------------------------------------------------------------------------------


def test_suggestions_propose_source_fields_for_unmapped_targets(api_as, viewer, json_spec):
    response = api_as(viewer).get(f"{SPECS}{json_spec.pk}/suggestions/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(body["results"]) >= 1
    best = [s for s in body["results"] if s["best"]]
    assert [(s["target_path"], s["source_path"]) for s in best] == [
        ("customerName", "customer_name")
    ]
    assert best[0]["rule_kind"] == "copy" and best[0]["score"] > 0.9
    assert "names match" in best[0]["reason"]
    only = api_as(viewer).get(f"{SPECS}{json_spec.pk}/suggestions/?best_only=true").json()
    assert only["results"] == best


@pytest.mark.parametrize("alternatives", ["0", "11", "x"])
def test_suggestions_refuse_a_bad_number_of_alternatives(api_as, viewer, json_spec, alternatives):
    response = api_as(viewer).get(f"{SPECS}{json_spec.pk}/suggestions/?alternatives={alternatives}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "alternatives"


def test_suggestions_need_both_schemas(api_as, viewer, csv_spec):
    response = api_as(viewer).get(f"{SPECS}{csv_spec.pk}/suggestions/")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "source_schema",
            "message": "INT-042 CSV orders v1 has no source schema to suggest from.",
            "code": "invalid",
        }
    ]


def test_accepted_suggestions_become_rows_with_one_revision(api_as, engineer, json_spec):
    response = api_as(engineer).post(
        f"{SPECS}{json_spec.pk}/suggestions/accept/",
        {
            "revision": 1,
            "pairs": [
                {"target_path": "customerName", "source_path": "customer_name"},
                {
                    "target_path": "extra",
                    "source_path": "amount",
                    "kind": "cast",
                    "params": {"to": "string"},
                },
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["spec_revision"] == 2
    assert [(r["position"], r["target_path"], r["kind"]) for r in body["rows"]] == [
        (4, "customerName", "copy"),
        (5, "extra", "cast"),
    ]
    assert fresh(json_spec).revision == 2
    assert FieldRule.objects.filter(spec=json_spec).count() == 5


def test_accepting_an_already_mapped_target_is_refused_naming_it(api_as, engineer, json_spec):
    response = api_as(engineer).post(
        f"{SPECS}{json_spec.pk}/suggestions/accept/",
        {
            "revision": 1,
            "pairs": [
                {"target_path": "customerName", "source_path": "customer_name"},
                {"target_path": "id", "source_path": "number"},
            ],
        },
        format="json",
    )
    assert response.status_code == 400
    assert [e["message"] for e in response.json()["errors"]] == [
        "id: the spec already has a row for this target field."
    ]
    assert FieldRule.objects.filter(spec=json_spec).count() == 3
    assert fresh(json_spec).revision == 1


def test_accepting_bad_pairs_names_each_field(api_as, engineer, json_spec):
    response = api_as(engineer).post(
        f"{SPECS}{json_spec.pk}/suggestions/accept/",
        {"revision": 1, "pairs": [{"target_path": "a"}, {"source_path": "b", "kind": "magic"}]},
        format="json",
    )
    assert response.status_code == 400
    errors = {(e["field"], e["message"]) for e in response.json()["errors"]}
    # (apps.core.problems names the first item's fields "pairs.source_path": its index 0
    # is dropped as falsy.)
    assert errors >= {
        ("pairs.1.target_path", "This field is required."),
        ("pairs.1.kind", '"magic" is not a valid choice.'),
    }
    assert len(errors) == 3
    empty = api_as(engineer).post(
        f"{SPECS}{json_spec.pk}/suggestions/accept/", {"revision": 1, "pairs": []}, format="json"
    )
    assert empty.status_code == 400
    assert FieldRule.objects.filter(spec=json_spec).count() == 3


def test_accepting_on_an_older_revision_is_a_conflict(api_as, engineer, json_spec):
    MappingSpec.objects.filter(pk=json_spec.pk).update(revision=3)
    response = api_as(engineer).post(
        f"{SPECS}{json_spec.pk}/suggestions/accept/",
        {"revision": 2, "pairs": [{"target_path": "customerName", "source_path": "customer_name"}]},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["current_revision"] == 3
    assert FieldRule.objects.filter(spec=json_spec).count() == 3


def test_an_approved_spec_accepts_no_suggestions(api_as, lead, json_spec):
    MappingSpec.objects.filter(pk=json_spec.pk).update(status=SpecStatus.APPROVED)
    response = api_as(lead).post(
        f"{SPECS}{json_spec.pk}/suggestions/accept/",
        {"revision": 1, "pairs": [{"target_path": "customerName", "source_path": "customer_name"}]},
        format="json",
    )
    assert response.status_code == 400
    assert "approved and frozen" in response.json()["detail"]
    assert FieldRule.objects.filter(spec=json_spec).count() == 3


def test_a_raw_body_over_the_limit_is_413(api_as, viewer, xml_spec, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = "<Order>" + "<Number>A1</Number>" * 100 + "</Order>"
    response = transform(api_as(viewer), xml_spec, body, content_type="application/xml")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
