"""The mapping specs API: list and filters, create, read, edit with the revision, review,
new drafts, diffs and deletion; conflicts are 409, frozen versions 400; query counts stay
constant as specs and rows grow."""

import pytest

from apps.core.models import AuditEntry
from apps.mappings.models import FieldRule, MappingSpec, MappingTest, SpecStatus
from tests.factories import InterfaceFactory
from tests.mappings.api_support import (
    SOURCE_SCHEMA,
    TARGET_SCHEMA,
    add_rows,
    count_queries,
    fresh,
    make_spec,
)

pytestmark = pytest.mark.django_db

SPECS = "/api/v1/mapping-specs/"


@pytest.fixture
def spec(interface_a):
    return make_spec(
        interface_a,
        description="Shop orders into the ERP",
        rows=[("id", ["number"]), ("total", ["amount"])],
        tests=[("simple", {"number": "A1", "amount": 5}, {"id": "A1", "total": 5})],
    )


def approved(spec, lead):
    MappingSpec.objects.filter(pk=spec.pk).update(status=SpecStatus.APPROVED, approved_by=lead)
    return fresh(spec)


# --------------------------------------------------------------------------------------
# List
# --------------------------------------------------------------------------------------


def test_the_list_shows_specs_without_schemas_or_rows(api_as, viewer, spec):
    response = api_as(viewer).get(SPECS)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    item = body["results"][0]
    assert item == {
        "id": spec.pk,
        "interface": "INT-042",
        "name": "Orders to ERP",
        "version": 1,
        "status": "draft",
        "description": "Shop orders into the ERP",
        "source_format": "json",
        "target_format": "json",
        "revision": 1,
        "rule_count": 2,
        "based_on": None,
        "approved_by": None,
        "approved_at": None,
        "updated_by": None,
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def test_the_list_filters_by_interface_status_name_and_text(api_as, viewer, spec, interface_b):
    make_spec(interface_b, name="Customers to CRM", description="nightly customer sync")
    make_spec(interface_b, name="Invoices", status=SpecStatus.IN_REVIEW)
    client = api_as(viewer)

    def names(query):
        response = client.get(SPECS + query)
        assert response.status_code == 200, response.json()
        return sorted(item["name"] for item in response.json()["results"])

    assert names("?interface=int-043") == ["Customers to CRM", "Invoices"]
    assert names("?status=in_review") == ["Invoices"]
    assert names("?name=orders%20to%20erp") == ["Orders to ERP"]
    assert names("?q=customer") == ["Customers to CRM"]
    assert names("?q=erp") == ["Orders to ERP"]
    assert client.get(SPECS + "?status=frozen").status_code == 400


def test_the_list_costs_the_same_queries_for_many_specs(api_as, viewer, team_a, lead):
    client = api_as(viewer)
    client.get(SPECS)  # the token's first use records it

    def add_specs(count):
        for _ in range(count):
            interface = InterfaceFactory(owner_team=team_a)
            spec = make_spec(interface, rows=[("id", ["number"]), ("total", ["amount"])])
            MappingSpec.objects.filter(pk=spec.pk).update(
                status=SpecStatus.APPROVED, approved_by=lead, updated_by=lead
            )

    add_specs(2)
    few, response = count_queries(lambda: client.get(SPECS))
    assert response.json()["count"] == 2
    add_specs(10)
    many, response = count_queries(lambda: client.get(SPECS))
    assert response.json()["count"] == 12
    # The token with its user, the count, and one page of specs with their interfaces,
    # approvers, editors and row counts.
    assert few == many == 3


# --------------------------------------------------------------------------------------
# Create and read
# --------------------------------------------------------------------------------------


def test_an_engineer_creates_a_draft_with_inline_schemas(api_as, engineer, interface_a):
    response = api_as(engineer).post(
        SPECS,
        {
            "interface": "INT-042",
            "name": "Orders to ERP",
            "description": "v1",
            "source_schema": SOURCE_SCHEMA,
            "target_schema": TARGET_SCHEMA,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["version"], body["status"], body["revision"]) == (1, "draft", 1)
    assert (body["rules"], body["tests"], body["rule_count"]) == ([], [], 0)
    assert body["can_change"] is True and body["can_approve"] is False
    assert body["updated_by"] == "engineer"
    spec = MappingSpec.objects.get(pk=body["id"])
    assert spec.target_schema == TARGET_SCHEMA
    assert AuditEntry.objects.filter(object_id=str(spec.pk), action="create").exists()

    again = api_as(engineer).post(
        SPECS, {"interface": "INT-042", "name": "Orders to ERP"}, format="json"
    )
    assert again.status_code == 201 and again.json()["version"] == 2


def test_a_spec_can_read_an_operation_of_a_registered_spec(api_as, engineer, interface_a):
    from tests.mappings.test_engine_schema import ERP_API

    upload = api_as(engineer).post(
        "/api/v1/specs/",
        {"interface": "INT-042", "content": __import__("json").dumps(ERP_API)},
        format="json",
    )
    assert upload.status_code == 201, upload.json()
    api_spec = upload.json()["id"]
    response = api_as(engineer).post(
        SPECS,
        {
            "interface": "INT-042",
            "name": "To ERP orders",
            "source_schema": SOURCE_SCHEMA,
            "target_spec": api_spec,
            "target_operation": "POST /orders",
            "target_part": "request",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["target_spec"] == api_spec

    bad = api_as(engineer).post(
        SPECS,
        {
            "interface": "INT-042",
            "name": "Broken",
            "target_spec": api_spec,
            "target_operation": "GET /nothing",
            "target_part": "request",
        },
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["errors"] == [
        {
            "field": "target_operation",
            "message": "INT-042 spec v1 has no operation 'GET /nothing'",
            "code": "invalid",
        }
    ]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "x"}, "interface", "This field is required."),
        (
            {"interface": "INT-999", "name": "x"},
            "interface",
            "Object with code=INT-999 does not exist.",
        ),
        ({"interface": "INT-042", "name": ""}, "name", "This field may not be blank."),
        (
            {"interface": "INT-042", "name": "x", "source_format": "yaml"},
            "source_format",
            '"yaml" is not a valid choice.',
        ),
        (
            {"interface": "INT-042", "name": "x", "source_operation": "POST /orders"},
            "source_operation",
            "Choose a registered spec first.",
        ),
    ],
)
def test_a_bad_create_names_the_field_and_saves_nothing(
    api_as, engineer, interface_a, body, field, message
):
    response = api_as(engineer).post(SPECS, body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [(field, message)]
    assert not MappingSpec.objects.exists()


def test_a_bad_schema_is_refused(api_as, engineer, interface_a):
    response = api_as(engineer).post(
        SPECS,
        {"interface": "INT-042", "name": "x", "target_schema": {"type": "banana"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "target_schema"
    assert not MappingSpec.objects.exists()


def test_retrieve_shows_rows_in_order_tests_and_flags(api_as, lead, spec):
    FieldRule.objects.filter(spec=spec, target_path="id").update(position=9)
    response = api_as(lead).get(f"{SPECS}{spec.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert [(r["position"], r["target_path"]) for r in body["rules"]] == [(2, "total"), (9, "id")]
    assert body["rules"][0] == {
        "id": body["rules"][0]["id"],
        "position": 2,
        "target_path": "total",
        "source_paths": ["amount"],
        "kind": "copy",
        "params": {},
        "required": False,
        "target_type": "",
        "notes": "",
        "example": "",
    }
    assert [t["name"] for t in body["tests"]] == ["simple"]
    assert body["source_schema"] == SOURCE_SCHEMA
    assert (body["can_change"], body["can_approve"]) == (True, False)  # not in review yet


@pytest.mark.parametrize(
    ("persona", "can_change", "can_approve"),
    [
        ("viewer", False, False),
        ("engineer", True, False),
        ("lead", True, True),
        ("admin_user", True, True),
        ("engineer_b", False, False),
    ],
)
def test_the_flags_say_what_you_may_do(request, api_as, spec, persona, can_change, can_approve):
    MappingSpec.objects.filter(pk=spec.pk).update(status=SpecStatus.IN_REVIEW)
    body = api_as(request.getfixturevalue(persona)).get(f"{SPECS}{spec.pk}/").json()
    assert (body["can_change"], body["can_approve"]) == (can_change, can_approve)


def test_retrieve_costs_the_same_queries_for_many_rows_and_tests(api_as, viewer, spec):
    client = api_as(viewer)
    url = f"{SPECS}{spec.pk}/"
    client.get(url)
    few, response = count_queries(lambda: client.get(url))
    assert len(response.json()["rules"]) == 2
    add_rows(spec, [(f"extra{n}", ["number"]) for n in range(30)], start=3)
    for n in range(10):
        MappingTest.objects.create(spec=spec, name=f"t{n}", source_payload={})
    many, response = count_queries(lambda: client.get(url))
    assert len(response.json()["rules"]) == 32 and len(response.json()["tests"]) == 11
    # The token with its user, the spec with its interface and people, its rows, its tests.
    assert few == many == 4


# --------------------------------------------------------------------------------------
# Edit
# --------------------------------------------------------------------------------------


def test_an_edit_names_the_revision_and_takes_the_next(api_as, engineer, spec):
    response = api_as(engineer).patch(
        f"{SPECS}{spec.pk}/", {"description": "Changed", "revision": 1}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["description"], response.json()["revision"]) == ("Changed", 2)
    assert len(response.json()["rules"]) == 2
    assert fresh(spec).updated_by.username == "engineer"


def test_an_edit_without_the_revision_is_refused(api_as, engineer, spec):
    response = api_as(engineer).patch(
        f"{SPECS}{spec.pk}/", {"description": "Changed"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "revision",
            "message": "Send the revision of the spec you edited.",
            "code": "invalid",
        }
    ]
    assert fresh(spec).description == "Shop orders into the ERP"


def test_put_replaces_the_editable_fields(api_as, engineer, spec):
    response = api_as(engineer).put(
        f"{SPECS}{spec.pk}/",
        {
            "interface": "INT-042",
            "name": "Orders to ERP",
            "description": "Put",
            "source_schema": SOURCE_SCHEMA,
            "target_schema": None,
            "revision": 1,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert fresh(spec).target_schema is None and fresh(spec).description == "Put"


def test_the_identity_of_a_version_cannot_be_edited(api_as, engineer, spec, interface_b):
    response = api_as(engineer).patch(
        f"{SPECS}{spec.pk}/", {"name": "Renamed", "revision": 1}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "name"
    assert fresh(spec).name == "Orders to ERP" and fresh(spec).revision == 1


def test_the_second_of_two_clients_gets_409_naming_who_changed_it(api_as, engineer, lead, spec):
    first, second = api_as(engineer), api_as(lead)
    read_by_first = first.get(f"{SPECS}{spec.pk}/").json()["revision"]
    read_by_second = second.get(f"{SPECS}{spec.pk}/").json()["revision"]
    assert read_by_first == read_by_second == 1

    saved = first.patch(
        f"{SPECS}{spec.pk}/", {"description": "First", "revision": read_by_first}, format="json"
    )
    assert saved.status_code == 200
    refused = second.patch(
        f"{SPECS}{spec.pk}/", {"description": "Second", "revision": read_by_second}, format="json"
    )
    assert refused.status_code == 409
    assert refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    stored = fresh(spec)
    assert body["current_revision"] == 2
    assert body["changed_by"] == "engineer"
    assert body["changed_at"] == saved.json()["updated_at"]
    assert body["detail"].startswith("INT-042 Orders to ERP v1 was changed by engineer at ")
    assert body["detail"].endswith(
        "(revision 2; you edited revision 1). Reload it and apply your changes again."
    )
    assert (stored.description, stored.revision) == ("First", 2)


def test_an_approved_version_is_frozen(api_as, lead, spec):
    spec = approved(spec, lead)
    response = api_as(lead).patch(
        f"{SPECS}{spec.pk}/", {"description": "Changed", "revision": 1}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "INT-042 Orders to ERP v1 is approved and frozen; start a new draft from it to change it."
    )
    assert fresh(spec).description == "Shop orders into the ERP"


# --------------------------------------------------------------------------------------
# Review and versions
# --------------------------------------------------------------------------------------


def test_submit_approve_and_start_a_new_draft(api_as, engineer, lead, spec):
    engineer_client, lead_client = api_as(engineer), api_as(lead)
    submitted = engineer_client.post(f"{SPECS}{spec.pk}/submit/", {"revision": 1}, format="json")
    assert submitted.status_code == 200, submitted.json()
    assert (submitted.json()["status"], submitted.json()["revision"]) == ("in_review", 2)

    refused = engineer_client.post(f"{SPECS}{spec.pk}/approve/", {"revision": 2}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "Only a lead of the interface's team or an admin approves mappings."
    )

    approved_ = lead_client.post(f"{SPECS}{spec.pk}/approve/", {"revision": 2}, format="json")
    assert approved_.status_code == 200
    body = approved_.json()
    assert (body["status"], body["approved_by"], body["revision"]) == ("approved", "lead", 3)
    assert body["approved_at"] and body["can_change"] is False

    draft = engineer_client.post(f"{SPECS}{spec.pk}/new-draft/")
    assert draft.status_code == 201
    draft_body = draft.json()
    assert (draft_body["version"], draft_body["status"], draft_body["based_on"]) == (
        2,
        "draft",
        spec.pk,
    )
    assert [r["target_path"] for r in draft_body["rules"]] == ["id", "total"]
    assert [t["name"] for t in draft_body["tests"]] == ["simple"]

    again = engineer_client.post(f"{SPECS}{spec.pk}/new-draft/")
    assert again.status_code == 400
    assert again.json()["errors"][0]["message"] == (
        "Version 2 of Orders to ERP is still open; edit that one."
    )


def test_return_to_draft_needs_a_spec_in_review(api_as, lead, spec):
    client = api_as(lead)
    refused = client.post(f"{SPECS}{spec.pk}/return-to-draft/", {"revision": 1}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "status"
    client.post(f"{SPECS}{spec.pk}/submit/", {"revision": 1}, format="json")
    back = client.post(f"{SPECS}{spec.pk}/return-to-draft/", {"revision": 2}, format="json")
    assert back.status_code == 200 and back.json()["status"] == "draft"


def test_a_spec_that_does_not_compile_cannot_be_submitted(api_as, engineer, spec):
    add_rows(spec, [("countryCode", ["country"], "lookup", {"table": "nowhere"})], start=3)
    response = api_as(engineer).post(f"{SPECS}{spec.pk}/submit/", {"revision": 1}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["rules"]
    assert errors[0]["message"].startswith("row 3, countryCode: ")
    assert "nowhere" in errors[0]["message"]
    assert fresh(spec).status == "draft"


@pytest.mark.parametrize("revision", [None, "two", 0])
def test_a_status_change_needs_a_whole_revision(api_as, engineer, spec, revision):
    body = {} if revision is None else {"revision": revision}
    response = api_as(engineer).post(f"{SPECS}{spec.pk}/submit/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "revision"
    assert fresh(spec).status == "draft"


def test_a_status_change_on_an_older_revision_is_a_conflict(api_as, engineer, spec):
    MappingSpec.objects.filter(pk=spec.pk).update(revision=5)
    response = api_as(engineer).post(f"{SPECS}{spec.pk}/submit/", {"revision": 4}, format="json")
    assert response.status_code == 409
    assert response.json()["current_revision"] == 5
    assert fresh(spec).status == "draft"


def test_the_diff_compares_with_the_version_it_is_based_on(api_as, engineer, lead, spec):
    spec = approved(spec, lead)
    client = api_as(engineer)
    draft_id = client.post(f"{SPECS}{spec.pk}/new-draft/").json()["id"]
    FieldRule.objects.filter(spec_id=draft_id, target_path="total").update(kind="cast")
    FieldRule.objects.filter(spec_id=draft_id, target_path="total").update(params={"to": "string"})
    add_rows(MappingSpec.objects.get(pk=draft_id), [("customerName", ["customer_name"])], start=3)
    MappingSpec.objects.filter(pk=draft_id).update(description="v2")

    response = client.get(f"{SPECS}{draft_id}/diff/")
    assert response.status_code == 200
    body = response.json()
    assert body["old"] == {"id": spec.pk, "version": 1}
    assert body["new"] == {"id": draft_id, "version": 2}
    assert body["spec_fields"] == [
        {"field": "description", "old": "Shop orders into the ERP", "new": "v2"}
    ]
    assert [(r["target_path"], r["change"], r["fields"]) for r in body["rows"]] == [
        ("total", "changed", ["kind", "params"]),
        ("customerName", "added", []),
    ]
    assert body["rows"][0]["old"]["kind"] == "copy" and body["rows"][0]["new"]["kind"] == "cast"

    explicit = client.get(f"{SPECS}{spec.pk}/diff/?against={draft_id}").json()
    assert explicit["old"]["id"] == draft_id
    assert [r["change"] for r in explicit["rows"]] == ["changed", "removed"]


def test_the_diff_shows_registered_specs_by_id(api_as, engineer, spec, interface_a):
    import json

    from tests.mappings.test_engine_schema import ERP_API

    api_spec = (
        api_as(engineer)
        .post(
            "/api/v1/specs/",
            {"interface": "INT-042", "content": json.dumps(ERP_API)},
            format="json",
        )
        .json()["id"]
    )
    other = make_spec(
        interface_a,
        name="Other",
        target_schema=None,
        target_spec_id=api_spec,
        target_operation="POST /orders",
        target_part="request",
    )
    body = api_as(engineer).get(f"{SPECS}{other.pk}/diff/?against={spec.pk}").json()
    fields = {item["field"]: item for item in body["spec_fields"]}
    assert fields["target_spec"] == {"field": "target_spec", "old": None, "new": api_spec}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "",
            "INT-042 Orders to ERP v1 is the first version of its mapping; give the id of a spec to compare with.",
        ),
        ("?against=abc", "Give the id of the mapping spec to compare with."),
        ("?against=999999", "There is no mapping spec with the id 999999."),
    ],
)
def test_a_diff_without_another_version_is_400(api_as, viewer, spec, query, message):
    response = api_as(viewer).get(f"{SPECS}{spec.pk}/diff/{query}")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "against", "message": message, "code": "invalid"}
    ]


def test_the_diff_defaults_to_the_previous_version_of_the_name(api_as, viewer, spec, interface_a):
    second = make_spec(interface_a, version=2, rows=[("id", ["number"])])
    body = api_as(viewer).get(f"{SPECS}{second.pk}/diff/").json()
    assert body["old"]["id"] == spec.pk
    assert [(r["target_path"], r["change"]) for r in body["rows"]] == [("total", "removed")]


# --------------------------------------------------------------------------------------
# Delete
# --------------------------------------------------------------------------------------


def test_a_draft_is_deleted_with_its_rows_and_tests(api_as, engineer, spec):
    response = api_as(engineer).delete(f"{SPECS}{spec.pk}/")
    assert response.status_code == 204
    assert not MappingSpec.objects.exists() and not FieldRule.objects.exists()
    assert AuditEntry.objects.filter(object_id=str(spec.pk), action="delete").exists()


def test_an_approved_version_is_kept(api_as, lead, spec):
    spec = approved(spec, lead)
    response = api_as(lead).delete(f"{SPECS}{spec.pk}/")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "status",
            "message": "INT-042 Orders to ERP v1 is approved; approved versions are kept as the record.",
            "code": "invalid",
        }
    ]
    assert MappingSpec.objects.filter(pk=spec.pk).exists()


def test_a_spec_has_an_audit_history(api_as, engineer, viewer, spec):
    api_as(engineer).patch(
        f"{SPECS}{spec.pk}/", {"description": "Changed", "revision": 1}, format="json"
    )
    response = api_as(viewer).get(f"{SPECS}{spec.pk}/history/")
    assert response.status_code == 200
    assert [(e["action"], e["actor_name"]) for e in response.json()] == [("update", "engineer")]
    assert response.json()[0]["changes"]["description"] == ["Shop orders into the ERP", "Changed"]


def test_search_finds_specs_by_interface_code(api_as, viewer, spec, interface_b):
    make_spec(interface_b, name="Other")
    response = api_as(viewer).get(f"{SPECS}?search=INT-043")
    assert [item["name"] for item in response.json()["results"]] == ["Other"]
