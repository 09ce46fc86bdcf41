"""Importing a Postman Collection v2.1 as test cases: the plan, applying it, bad input, roles."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.catalog import services as catalog_services
from apps.core.models import AuditEntry
from apps.testing import postman
from apps.testing.models import TestCase

ORDERS_COLLECTION = Path(__file__).parent / "data" / "postman_orders.json"

ORDERS_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Orders", "version": "1.0.0"},
    "paths": {
        "/orders": {
            "get": {"responses": {"200": {"description": "Orders"}}},
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"201": {"description": "Created"}},
            },
        },
        "/orders/{orderId}": {
            "parameters": [
                {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "get": {"responses": {"200": {"description": "One order"}}},
        },
        "/orders/{orderId}/shipping-note": {
            "parameters": [
                {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "put": {
                "requestBody": {"content": {"application/xml": {"schema": {"type": "object"}}}},
                "responses": {"204": {"description": "Stored"}},
            },
        },
        "/orders/{orderId}/notes": {
            "parameters": [
                {"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "post": {
                "requestBody": {
                    "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
                },
                "responses": {"201": {"description": "Noted"}},
            },
        },
    },
}

ADDED_NAMES = [
    "List orders",
    "Create order",
    "Put shipping note",
    "Add note",
    "Get order without token",
    "Create order with a bare quantity",
    "List orders (2)",
]


def orders_collection() -> dict:
    return json.loads(ORDERS_COLLECTION.read_text())


def as_bytes(document) -> bytes:
    return json.dumps(document).encode()


def collection_of(*items, **top) -> dict:
    """A minimal v2.1 collection holding these items."""
    return {
        "info": {
            "name": "Small",
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json",
        },
        "item": list(items),
        **top,
    }


def request_item(name="Get orders", url="{{baseUrl}}/orders", **request):
    return {"name": name, "request": {"method": "GET", "url": url, **request}}


@pytest.fixture
def orders_spec(engineer, interface_a):
    return catalog_services.upload_spec(
        engineer, interface_a, json.dumps(ORDERS_SPEC), filename="orders.json"
    )


def case_audit_entries():
    return AuditEntry.objects.filter(content_type__model="testcase")


# ---------------------------------------------------------------- reading the collection


def test_every_request_of_the_nested_folders_becomes_a_case():
    plan = postman.parse_collection(ORDERS_COLLECTION.read_bytes())

    assert plan.collection_name == "Orders API"
    assert [case.name for case in plan.cases] == ADDED_NAMES
    assert [case.source for case in plan.cases] == [
        "$.item[0].item[0]",
        "$.item[0].item[1]",
        "$.item[0].item[2].item[0]",
        "$.item[0].item[2].item[1]",
        "$.item[1].item[0]",
        "$.item[1].item[1]",
        "$.item[1].item[2]",
    ]
    assert plan.errors == [] and plan.warnings == []
    assert plan.skipped == [
        {
            "name": "Upload label",
            "source": "$.item[0].item[2].item[2]",
            "reason": "a formdata body (multipart form or file upload) cannot be imported: "
            "Pontis sends JSON, XML and text bodies only.",
        }
    ]


def test_a_get_request_keeps_enabled_query_and_headers_and_its_status_assertion():
    listed = postman.parse_collection(ORDERS_COLLECTION.read_bytes()).cases[0]

    assert listed.fields == {
        "name": "List orders",
        "description": "Open orders, newest first.",
        "method": "GET",
        "path": "orders",
        "query": {"status": "open"},
        "headers": {"Accept": "application/json"},
        "body": None,
        "body_format": "json",
        "body_text": "",
        "variables": {},
        "send_credentials": True,
        "expected_statuses": [200],
        "tags": ["postman", "orders"],
        "scripts": "// test script of the request\n"
        'pm.test("Status code is 200", function () {\n'
        "    pm.response.to.have.status(200);\n"
        "});",
    }
    assert listed.warnings == ["1 script kept as text; it is not executed."]


def test_a_raw_json_body_is_parsed_and_scripts_are_kept_as_text():
    created = postman.parse_collection(ORDERS_COLLECTION.read_bytes()).cases[1]

    assert created.fields["body"] == {
        "customer": "{{customerId}}",
        "lines": [{"sku": "A-1", "quantity": 2}],
    }
    assert created.fields["body_format"] == "json"
    # Only the variables the request uses: the collection's {{token}} is never copied.
    assert created.fields["variables"] == {"customerId": "C-10001"}
    assert created.fields["expected_statuses"] == [201]
    assert created.fields["scripts"] == (
        "// prerequest script of the request\n"
        'pm.collectionVariables.set("requestedAt", new Date().toISOString());\n\n'
        "// test script of the request\n"
        'pm.test("Created", function () {\n'
        "    pm.expect(pm.response.code).to.eql(201);\n"
        "});\n"
        'pm.collectionVariables.set("orderId", pm.response.json().number);'
    )
    assert created.warnings == ["2 scripts kept as text; they are not executed."]


def test_xml_and_urlencoded_bodies_and_folder_variables():
    cases = postman.parse_collection(ORDERS_COLLECTION.read_bytes()).cases
    note, added = cases[2], cases[3]

    assert note.fields["path"] == "orders/{{orderId}}/shipping-note"  # ":orderId" path variable
    assert note.fields["body_format"] == "xml" and note.fields["body"] is None
    assert note.fields["body_text"] == (
        '<?xml version="1.0"?>\n'
        "<shippingNote><order>{{orderId}}</order><carrier>DHL</carrier></shippingNote>"
    )
    assert note.fields["variables"] == {"orderId": "2002"}  # the folder's value wins
    assert note.fields["tags"] == ["postman", "orders", "shipping"]

    assert added.fields["body_format"] == "text"
    assert added.fields["body_text"] == "text=Leave+at+the+door&author={{customerId}}"
    assert added.fields["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    assert added.fields["variables"] == {"customerId": "C-10001", "orderId": "2002"}


def test_noauth_literal_hosts_bare_variables_and_authorization_headers():
    cases = postman.parse_collection(ORDERS_COLLECTION.read_bytes()).cases
    without_token, bare, second_list = cases[4], cases[5], cases[6]

    assert without_token.fields["send_credentials"] is False
    assert without_token.fields["expected_statuses"] == [401]
    assert without_token.fields["variables"] == {"orderId": "1001"}  # the collection's value
    assert without_token.fields["tags"] == ["postman", "negative-cases"]

    assert bare.fields["path"] == "orders"
    assert bare.fields["body_format"] == "text" and bare.fields["body"] is None
    assert bare.fields["body_text"] == (
        '{"customer": "{{customerId}}", "lines": [{"sku": "A-1", "quantity": {{quantity}}}]}'
    )
    assert bare.fields["variables"] == {"customerId": "C-10001", "quantity": "3"}
    assert bare.warnings == [
        "The URL https://orders.example.com/api/orders was taken relative to {{baseUrl}} "
        "(https://orders.example.com/api): Pontis sends the request to the endpoint's base URL.",
        "The raw body is not valid JSON (a {{variable}} outside a JSON string?): "
        "it was kept as a text body.",
    ]

    assert second_list.fields["headers"] == {}
    assert second_list.fields["query"] == {"status": "cancelled"}
    assert second_list.fields["send_credentials"] is True
    assert second_list.warnings == [
        "The Authorization header was dropped: Pontis attaches the endpoint's credentials."
    ]


def test_auth_that_is_not_the_endpoints_credentials_is_reported():
    document = collection_of(
        request_item(
            "literal bearer", auth={"type": "bearer", "bearer": [{"key": "token", "value": "abc"}]}
        ),
        {"name": "Folder", "item": [request_item("inherits oauth2")], "auth": {"type": "oauth2"}},
        request_item(
            "basic with variables",
            auth={
                "type": "basic",
                "basic": [
                    {"key": "username", "value": "{{user}}"},
                    {"key": "password", "value": "{{password}}"},
                ],
            },
        ),
    )
    plan = postman.parse_collection(as_bytes(document))

    assert [c.fields["send_credentials"] for c in plan.cases] == [True, True, True]
    assert plan.cases[0].warnings == [
        "$.item[0].request.auth: bearer auth with a literal secret was not imported; the case "
        "sends the endpoint's credentials instead."
    ]
    assert plan.warnings == [
        "$.item[1].auth: oauth2 auth is not imported; the case sends the endpoint's "
        "credentials instead."
    ]
    assert plan.cases[2].warnings == []
    assert plan.cases[2].fields["variables"] == {}


def test_url_strings_path_variables_and_repeated_query_parameters():
    document = collection_of(
        request_item("a", url="{{base_url}}/orders/:number?tag=a&tag=b"),
        request_item(
            "b",
            url={
                "raw": "{{host}}/orders/:number",
                "host": ["{{host}}"],
                "path": ["orders", ":number"],
                "variable": [{"key": "number", "value": "SO-1"}],
            },
        ),
        request_item("c", url="/orders#top"),
    )
    plan = postman.parse_collection(as_bytes(document))

    assert [(c.fields["path"], c.fields["query"], c.fields["variables"]) for c in plan.cases] == [
        ("orders/{{number}}", {"tag": ["a", "b"]}, {}),
        ("orders/{{number}}", {}, {"number": "SO-1"}),
        ("orders", {}, {}),
    ]


def test_status_assertions_in_several_forms():
    scripts = [
        "pm.response.to.have.status(202);",
        "pm.expect(pm.response.code).to.be.oneOf([200, 204]);",
        'tests["ok"] = responseCode.code === 200;',
        'pm.response.to.have.status("Created");',
    ]
    item = {**request_item(), "event": [{"listen": "test", "script": {"exec": scripts}}]}
    plan = postman.parse_collection(as_bytes(collection_of(item)))

    assert plan.cases[0].fields["expected_statuses"] == [202, 200, 204]


def test_collection_and_folder_scripts_are_kept_with_headings():
    folder = {
        "name": "Orders",
        "event": [{"listen": "test", "script": {"exec": ["pm.response.to.have.status(200);"]}}],
        "item": [request_item()],
    }
    document = collection_of(
        folder,
        event=[{"listen": "prerequest", "script": {"exec": ["console.log('start');"]}}],
    )
    case = postman.parse_collection(as_bytes(document)).cases[0]

    assert case.fields["scripts"] == (
        "// prerequest script of the collection\nconsole.log('start');\n\n"
        '// test script of the folder "Orders"\npm.response.to.have.status(200);'
    )
    assert case.fields["expected_statuses"] == [200]
    assert case.warnings == ["2 scripts kept as text; they are not executed."]


def test_a_collection_wrapped_by_the_postman_api_is_read():
    plan = postman.parse_collection(as_bytes({"collection": orders_collection()}))
    assert len(plan.cases) == 7


# ---------------------------------------------------------------- bad input


V2_0_SCHEMA = "https://schema.getpostman.com/json/collection/v2.0.0/collection.json"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"{not json",
            "The file is not JSON: Expecting property name enclosed in double quotes at line 1 column 2.",
        ),
        (b"\xff\xfe", "The file is not UTF-8 text: a collection is a JSON file."),
        (b"[]", "$: a Postman collection is a JSON object, not an array."),
        (
            as_bytes({"id": "1", "name": "Old", "order": [], "requests": []}),
            "$: this is a Postman Collection v1 file; export the collection again as "
            "Collection v2.1 (Postman: ••• → Export → Collection v2.1).",
        ),
        (
            as_bytes({"info": {"name": "Old", "schema": V2_0_SCHEMA}, "item": []}),
            "$.info.schema: this is a Postman Collection v2.0.0 file; export the collection "
            "again as Collection v2.1 (Postman: ••• → Export → Collection v2.1).",
        ),
        (as_bytes({"item": []}), "$.info: missing; this is not a Postman collection."),
        (
            as_bytes({"info": {"schema": "https://example.com/x.json"}, "item": []}),
            "$.info.schema: missing or not a Postman collection schema URL.",
        ),
        (
            as_bytes({**collection_of(), "item": {"a": 1}}),
            "$.item: missing or not a list of requests and folders.",
        ),
        (
            as_bytes({"collection": {"info": {"schema": V2_0_SCHEMA}, "item": []}}),
            "$.collection.info.schema: this is a Postman Collection v2.0.0 file; export the "
            "collection again as Collection v2.1 (Postman: ••• → Export → Collection v2.1).",
        ),
    ],
)
def test_unreadable_collections_are_refused_naming_the_json_path(data, message):
    with pytest.raises(postman.CollectionError) as raised:
        postman.parse_collection(data)
    assert str(raised.value) == message


def test_a_file_over_5_mb_is_refused():
    document = collection_of(request_item(description="x" * (6 * 1024 * 1024)))
    with pytest.raises(postman.CollectionError) as raised:
        postman.parse_collection(as_bytes(document))
    assert str(raised.value) == "The file is 6144 KB; the limit is 5120 KB."


def test_bad_requests_are_errors_naming_request_and_json_path():
    document = collection_of(
        {"name": "Folder", "item": [{"name": "Orphan"}, request_item("Fine")]},
        request_item("Tracing", method="TRACE"),
        request_item("Binary", body={"mode": "binary", "binary": "x"}),
        request_item("No URL", url=""),
        request_item("Upload", body={"mode": "file", "file": {"src": "a.pdf"}}),
    )
    plan = postman.parse_collection(as_bytes(document))

    assert [c.name for c in plan.cases] == ["Fine"]
    assert [e["message"] for e in plan.errors] == [
        'Request "Orphan" ($.item[0].item[0]): an item without a request (and not a folder '
        "with items).",
        'Request "Tracing" ($.item[1].request.method): method TRACE is not supported.',
        "Request \"Binary\" ($.item[2].request.body.mode): body mode 'binary' is not a "
        "Postman body mode.",
        'Request "No URL" ($.item[3].request.url): missing.',
    ]
    assert [s["name"] for s in plan.skipped] == ["Upload"]


# ---------------------------------------------------------------- planning and applying


@pytest.mark.django_db
def test_a_plan_with_errors_is_refused_and_saves_nothing(engineer, interface_a, orders_spec):
    document = orders_collection()
    document["item"][1]["item"].append({"name": "Orphan"})
    plan = postman.parse_collection(as_bytes(document))

    with pytest.raises(postman.ImportRefused) as refused:
        postman.apply_plan(engineer, interface_a, plan)
    assert str(refused.value) == (
        'Request "Orphan" ($.item[1].item[3]): an item without a request (and not a folder '
        "with items)."
    )
    assert not TestCase.objects.exists() and not case_audit_entries().exists()


@pytest.mark.django_db
def test_a_request_outside_the_spec_fails_validation_and_nothing_is_saved(
    engineer, api_as, interface_a, orders_spec
):
    document = orders_collection()
    document["item"][1]["item"].append(request_item("Refunds", url="{{baseUrl}}/refunds"))
    api = api_as(engineer)

    plan = api.post(
        "/api/v1/test-cases/import-postman/",
        {"interface": "INT-042", "collection": document},
        format="json",
    ).json()
    assert plan["errors"] == [
        {
            "name": "Refunds",
            "source": "$.item[1].item[3]",
            "message": 'Request "Refunds" ($.item[1].item[3]): path: GET /refunds is not an '
            "operation of spec v1.",
        }
    ]

    response = api.post(
        "/api/v1/test-cases/import-postman/",
        {"interface": "INT-042", "collection": document, "apply": True},
        format="json",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "collection",
            "message": 'Request "Refunds" ($.item[1].item[3]): path: GET /refunds is not an '
            "operation of spec v1.",
            "code": "invalid",
        }
    ]
    assert not TestCase.objects.exists() and not case_audit_entries().exists()


@pytest.mark.django_db
def test_dry_run_shows_the_plan_and_saves_nothing(engineer, api_as, orders_spec):
    response = api_as(engineer).post(
        "/api/v1/test-cases/import-postman/",
        {"interface": "INT-042", "collection": orders_collection()},
        format="json",
    )
    assert response.status_code == 200, response.json()
    plan = response.json()
    assert plan["applied"] is False
    assert plan["interface"] == "INT-042" and plan["collection"] == "Orders API"
    assert [a["name"] for a in plan["add"]] == ADDED_NAMES
    assert plan["add"][2] == {
        "name": "Put shipping note",
        "source": "$.item[0].item[2].item[0]",
        "method": "PUT",
        "path": "orders/{{orderId}}/shipping-note",
        "warnings": [],
    }
    assert (plan["change"], plan["unchanged"], plan["errors"], plan["warnings"]) == ([], [], [], [])
    assert [s["name"] for s in plan["skipped"]] == ["Upload label"]
    assert not TestCase.objects.exists() and not case_audit_entries().exists()


@pytest.mark.django_db
def test_apply_saves_every_case_with_audit_and_a_second_import_changes_nothing(
    engineer, api_as, interface_a, orders_spec
):
    api = api_as(engineer)
    payload = {"interface": "INT-042", "collection": orders_collection(), "apply": True}

    applied = api.post("/api/v1/test-cases/import-postman/", payload, format="json").json()
    assert applied["applied"] is True and len(applied["add"]) == 7
    cases = {c.name: c for c in TestCase.objects.filter(interface=interface_a)}
    assert sorted(cases) == sorted(ADDED_NAMES)
    assert cases["Put shipping note"].body_format == "xml"
    assert cases["Get order without token"].send_credentials is False
    assert "pm.response.to.have.status(401)" in cases["Get order without token"].scripts
    assert case_audit_entries().filter(action="create").count() == 7
    assert "pm-secret-token-value" not in json.dumps(
        list(TestCase.objects.values("variables", "headers", "body", "body_text", "query"))
    )

    again = api.post("/api/v1/test-cases/import-postman/", payload, format="json").json()
    assert (again["add"], again["change"]) == ([], [])
    assert sorted(again["unchanged"]) == sorted(ADDED_NAMES)
    assert case_audit_entries().count() == 7


@pytest.mark.django_db
def test_a_changed_request_changes_only_its_case_and_other_cases_are_left_alone(
    engineer, interface_a, orders_spec
):
    postman.apply_plan(
        engineer, interface_a, postman.parse_collection(ORDERS_COLLECTION.read_bytes())
    )
    own = TestCase.objects.create(interface=interface_a, name="Hand-made", path="orders")
    listed = TestCase.objects.get(name="List orders")
    listed.tags = ["smoke", "postman"]
    listed.save()

    document = orders_collection()
    document["item"][0]["item"][0]["request"]["url"]["query"][0]["value"] = "shipped"
    changes = postman.changes_for(interface_a, postman.parse_collection(as_bytes(document)))

    assert changes.add == [] and changes.errors == []
    assert changes.change == [
        {
            "id": listed.pk,
            "name": "List orders",
            "source": "$.item[0].item[0]",
            "changes": {
                "query": [{"status": "open"}, {"status": "shipped"}],
                "tags": [["smoke", "postman"], ["smoke", "postman", "orders"]],
            },
            "warnings": ["1 script kept as text; it is not executed."],
        }
    ]
    assert len(changes.unchanged) == 6

    postman.apply_plan(engineer, interface_a, postman.parse_collection(as_bytes(document)))
    listed.refresh_from_db()
    assert listed.query == {"status": "shipped"}
    assert listed.tags == ["smoke", "postman", "orders"]
    assert TestCase.objects.filter(pk=own.pk).exists()
    entry = case_audit_entries().filter(action="update").get()
    assert entry.object_id == str(listed.pk)


@pytest.mark.django_db
def test_apply_checks_the_actor_may_change_the_interface(engineer_b, interface_a):
    from django.core.exceptions import PermissionDenied

    plan = postman.parse_collection(ORDERS_COLLECTION.read_bytes())
    with pytest.raises(PermissionDenied):
        postman.apply_plan(engineer_b, interface_a, plan)
    assert not TestCase.objects.exists()


# ---------------------------------------------------------------- the API


@pytest.mark.django_db
def test_the_api_takes_the_collection_as_a_multipart_file(engineer, api_as, orders_spec):
    upload = SimpleUploadedFile(
        "orders.postman_collection.json", ORDERS_COLLECTION.read_bytes(), "application/json"
    )
    response = api_as(engineer).post(
        "/api/v1/test-cases/import-postman/",
        {"interface": "INT-042", "file": upload, "apply": "true"},
        format="multipart",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["applied"] is True
    assert TestCase.objects.count() == 7


@pytest.mark.django_db
def test_the_api_refuses_a_6_mb_file(engineer, api_as, interface_a):
    upload = SimpleUploadedFile("big.json", b" " * (6 * 1024 * 1024), "application/json")
    response = api_as(engineer).post(
        "/api/v1/test-cases/import-postman/",
        {"interface": "INT-042", "file": upload},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "file",
            "message": "The file is 6144 KB; the limit is 5120 KB.",
            "code": "invalid",
        }
    ]


@pytest.mark.django_db
def test_the_api_names_the_problem_of_an_unreadable_collection(engineer, api_as, interface_a):
    response = api_as(engineer).post(
        "/api/v1/test-cases/import-postman/",
        {"interface": "INT-042", "collection": {"info": {"schema": V2_0_SCHEMA}, "item": []}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "collection"
    assert response.json()["errors"][0]["message"].startswith(
        "$.info.schema: this is a Postman Collection v2.0.0 file"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "status"),
    [("viewer", 403), ("engineer_b", 403), ("engineer", 200), ("lead", 200), ("admin_user", 200)],
)
def test_who_may_import_through_the_api(request, persona, status, api_as, interface_a):
    user = request.getfixturevalue(persona)
    for apply in (False, True):
        response = api_as(user).post(
            "/api/v1/test-cases/import-postman/",
            {"interface": "INT-042", "collection": orders_collection(), "apply": apply},
            format="json",
        )
        assert response.status_code == status, response.json()
    assert TestCase.objects.exists() == (status == 200)


# ---------------------------------------------------------------- the browser


def upload(name="orders.postman_collection.json", content=None):
    return SimpleUploadedFile(name, content or ORDERS_COLLECTION.read_bytes(), "application/json")


@pytest.mark.django_db
def test_upload_then_apply_in_the_browser(client, engineer, interface_a, orders_spec):
    client.force_login(engineer)
    url = f"/interfaces/{interface_a.code}/test-cases/import/"
    assert client.get(url).status_code == 200

    page = client.post(url, {"file": upload()})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Plan for Orders API" in html and "Put shipping note" in html
    assert "Upload label" in html and "formdata body" in html
    assert 'name="apply"' in html
    assert not TestCase.objects.exists()

    digest = page.context["digest"]
    response = client.post(url, {"apply": "1", "digest": digest})
    assert response.status_code == 302
    assert response["Location"] == f"/interfaces/{interface_a.code}/contracts/"
    assert TestCase.objects.filter(interface=interface_a).count() == 7
    contracts = client.get(response["Location"]).content.decode()
    assert "Imported Orders API: 7 test cases added, 0 changed, 0 unchanged." in contracts
    assert "Import Postman collection" in contracts

    # The session no longer holds the upload: a second Apply changes nothing.
    again = client.post(url, {"apply": "1", "digest": digest})
    assert again.status_code == 302 and again["Location"] == url
    assert case_audit_entries().count() == 7


@pytest.mark.django_db
def test_the_browser_shows_errors_and_offers_no_apply(client, engineer, interface_a, orders_spec):
    client.force_login(engineer)
    document = orders_collection()
    document["item"].append(request_item("Refunds", url="{{baseUrl}}/refunds"))
    page = client.post(
        f"/interfaces/{interface_a.code}/test-cases/import/",
        {"file": upload(content=as_bytes(document))},
    )
    html = page.content.decode()
    assert "Nothing can be imported until these are fixed" in html
    assert "GET /refunds is not an operation of spec v1." in html
    assert 'name="apply"' not in html


@pytest.mark.django_db
def test_the_browser_names_the_problem_of_an_unreadable_file(client, engineer, interface_a):
    client.force_login(engineer)
    page = client.post(
        f"/interfaces/{interface_a.code}/test-cases/import/",
        {"file": upload(content=b"{not json")},
    )
    assert page.status_code == 200
    assert "The file is not JSON" in page.content.decode()
    assert "postman_import" not in client.session


@pytest.mark.django_db
def test_apply_with_a_digest_of_another_upload_saves_nothing(client, engineer, interface_a):
    client.force_login(engineer)
    url = f"/interfaces/{interface_a.code}/test-cases/import/"
    client.post(url, {"file": upload()})
    response = client.post(url, {"apply": "1", "digest": "0" * 64}, follow=True)
    assert "That upload is no longer waiting to be applied: upload it again." in (
        response.content.decode()
    )
    assert not TestCase.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_viewers_and_other_teams_cannot_import_in_the_browser(
    request, persona, client, interface_a
):
    client.force_login(request.getfixturevalue(persona))
    url = f"/interfaces/{interface_a.code}/test-cases/import/"
    assert client.get(url).status_code == 403
    assert client.post(url, {"file": upload()}).status_code == 403
    assert client.post(url, {"apply": "1", "digest": "0" * 64}).status_code == 403
    assert not TestCase.objects.exists()
    contracts = client.get(f"/interfaces/{interface_a.code}/contracts/").content.decode()
    assert "Import Postman collection" not in contracts


@pytest.mark.django_db
def test_the_browser_plan_shows_changed_fields(client, engineer, interface_a, orders_spec):
    postman.apply_plan(
        engineer, interface_a, postman.parse_collection(ORDERS_COLLECTION.read_bytes())
    )
    document = orders_collection()
    document["item"][0]["item"][0]["request"]["url"]["query"][0]["value"] = "shipped"
    client.force_login(engineer)
    page = client.post(
        f"/interfaces/{interface_a.code}/test-cases/import/",
        {"file": upload(content=as_bytes(document))},
    )
    html = page.content.decode()
    assert page.context["plan"]["change"][0]["shown_changes"] == [
        ("query", '{"status": "open"}', '{"status": "shipped"}')
    ]
    assert "<td>query</td>" in html and "&quot;shipped&quot;" in html
    assert "Unchanged: 6" in html


def test_a_request_given_as_a_url_string_is_a_get():
    plan = postman.parse_collection(
        as_bytes(collection_of({"name": "Health", "request": "{{baseUrl}}/health"}))
    )
    assert (plan.cases[0].fields["method"], plan.cases[0].fields["path"]) == ("GET", "health")
