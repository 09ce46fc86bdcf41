"""Test cases in the browser: list, detail, create, edit and delete, with the API's refusals."""

import json

import pytest
from django.contrib.contenttypes.models import ContentType

from apps.catalog import services as catalog_services
from apps.core.models import AuditEntry
from apps.testing.models import TestCase, TestResult, TestRun

pytestmark = pytest.mark.django_db

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Customers", "version": "1"},
    "paths": {
        "/customers/": {"get": {"responses": {"200": {"description": "the customers"}}}},
        "/customers/{id}/": {
            "get": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "one customer"}},
            }
        },
    },
}


@pytest.fixture
def spec(engineer, interface_a):
    return catalog_services.upload_spec(
        engineer, interface_a, json.dumps(SPEC), filename="openapi.json"
    )


@pytest.fixture
def case(interface_a):
    return TestCase.objects.create(
        interface=interface_a,
        name="list customers",
        path="customers/",
        expected_statuses=[200],
        tags=["smoke"],
        headers={"Accept": "application/json"},
    )


def form_data(**overrides):
    """A complete form post; a checkbox left out of the post is unticked."""
    data = {
        "name": "one customer",
        "kind": "contract",
        "scenario": "happy_path",
        "description": "",
        "method": "GET",
        "path": "customers/{{customer_id}}/",
        "query": "",
        "headers": '{"Accept": "application/json"}',
        "body": "",
        "body_format": "json",
        "body_text": "",
        "variables": '{"customer_id": "C-10001"}',
        "extract": "",
        "steps": "",
        "send_credentials": "on",
        "expected_statuses": "200, 404",
        "validate_schema": "on",
        "assertions": '[{"path": "$.id", "op": "equals", "value": "C-10001"}]',
        "max_latency_ms": "800",
        "tags": "smoke, customers",
        "is_active": "on",
        "manual_steps": "",
        "expected_result": "",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def case_audit(pk):
    """The audit entries of the test case with this id (it may be deleted)."""
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(TestCase), object_id=str(pk)
    )


def errors_of(response) -> dict:
    return {name: list(errors) for name, errors in response.context["form"].errors.items()}


def lowered(errors: dict) -> dict:
    return {name: [message.lower() for message in messages] for name, messages in errors.items()}


# ---------------------------------------------------------------- create


def test_engineer_creates_a_case_through_the_form(client, engineer, interface_a, spec):
    client.force_login(engineer)
    response = client.post(f"/interfaces/{interface_a.code}/test-cases/new/", form_data())
    case = TestCase.objects.get(interface=interface_a, name="one customer")
    assert response.status_code == 302
    assert response["Location"] == f"/test-cases/{case.pk}/"
    assert case.path == "customers/{{customer_id}}/"
    assert case.headers == {"Accept": "application/json"}
    assert case.variables == {"customer_id": "C-10001"}
    assert case.body is None and case.query == {} and case.steps == [] and case.extract == {}
    assert case.expected_statuses == [200, 404]
    assert case.tags == ["smoke", "customers"]
    assert case.max_latency_ms == 800
    assert case.send_credentials and case.validate_schema and case.is_active
    entry = case_audit(case.pk).get(action="create")
    assert entry.actor == engineer
    assert entry.changes["name"] == [None, "one customer"]
    assert entry.changes["expected_statuses"] == [None, [200, 404]]


def test_create_form_shows_every_field_in_groups(client, engineer, interface_a):
    client.force_login(engineer)
    page = client.get(f"/interfaces/{interface_a.code}/test-cases/new/").content.decode()
    assert "New test case for INT-042" in page
    for legend in ("Case", "Request", "Expectations", "Chained steps", "Manual cases"):
        assert f"<legend>{legend}</legend>" in page
    for name in form_data():
        assert f'name="{name}"' in page, name
    assert 'hx-post="/interfaces/INT-042/test-cases/new/"' in page


def test_chained_steps_body_and_manual_fields_are_saved(client, engineer, interface_a):
    client.force_login(engineer)
    steps = [{"method": "GET", "path": "customers/{{customer_id}}/", "expected_statuses": [200]}]
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/",
        form_data(
            name="create then read",
            kind="end_to_end",
            method="POST",
            path="customers/",
            body='{"name": "Ada", "vip": true}',
            extract='{"customer_id": "$.id"}',
            steps=json.dumps(steps),
            send_credentials=None,
            validate_schema=None,
            expected_statuses="",
            manual_steps="Open the CRM.",
            expected_result="The customer is there.",
        ),
    )
    assert response.status_code == 302, errors_of(response)
    case = TestCase.objects.get(name="create then read")
    assert case.body == {"name": "Ada", "vip": True}
    assert case.extract == {"customer_id": "$.id"}
    assert case.steps == steps
    assert case.expected_statuses == []
    assert not case.send_credentials and not case.validate_schema
    assert (case.manual_steps, case.expected_result) == ("Open the CRM.", "The customer is there.")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "headers",
            '{"Accept": }',
            "Headers is not valid JSON: Expecting value (line 1, column 12).",
        ),
        (
            "body",
            "{'single': 'quotes'}",
            "Body (JSON) is not valid JSON: Expecting property name "
            "enclosed in double quotes (line 1, column 2).",
        ),
        ("steps", "[{}, ]", "Steps is not valid JSON: Expecting value (line 1, column 6)."),
        ("headers", '["Accept"]', "Headers must be a JSON object, not an array."),
        ("query", '"status=open"', "Query parameters must be a JSON object, not a string."),
        ("variables", "42", "Variables must be a JSON object, not an integer."),
        ("steps", '{"path": "x"}', "Steps must be a JSON array, not an object."),
        ("steps", '[{"path": "x"}, 3]', "Steps: item 2 must be a JSON object, not an integer."),
        (
            "extract",
            '{"id": 1}',
            "Extract: the value of 'id' must be a JSON string, not an integer.",
        ),
        ("assertions", "{}", "Assertions must be a JSON array, not an object."),
    ],
)
def test_bad_json_is_refused_naming_the_field_and_nothing_is_saved(
    client, engineer, interface_a, field, value, message
):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/", form_data(**{field: value})
    )
    assert response.status_code == 200
    assert errors_of(response) == {field: [message]}
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not TestCase.objects.exists()
    assert not AuditEntry.objects.exists()


def test_the_form_keeps_what_was_typed_after_an_error(client, engineer, interface_a):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/", form_data(headers='{"Accept": }')
    )
    page = response.content.decode()
    assert "{&quot;Accept&quot;: }</textarea>" in page
    assert "C-10001" in page


def test_an_undefined_variable_is_an_error_of_the_variables_field(client, engineer, interface_a):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/",
        form_data(variables="", headers='{"X-Tenant": "{{tenant}}"}'),
    )
    # validate_case's own words, whatever their capitalisation
    assert lowered(errors_of(response)) == {"variables": ["never defined: customer_id, tenant."]}
    assert not TestCase.objects.exists()


def test_an_operation_the_spec_lacks_is_an_error_of_the_path_field(
    client, engineer, interface_a, spec
):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/",
        form_data(method="DELETE", path="customers/"),
    )
    assert errors_of(response) == {"path": ["DELETE /customers/ is not an operation of spec v1."]}
    assert not TestCase.objects.exists()


def test_bad_assertions_statuses_and_tags_are_field_errors(client, engineer, interface_a):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/",
        form_data(
            assertions='[{"path": "$.id", "op": "resembles", "value": 1}]',
            expected_statuses="200, 7000",
            tags="smoke, " + "x" * 51,
            max_latency_ms="-5",
        ),
    )
    errors = errors_of(response)
    assert errors["assertions"] == [
        "assertion 1: unknown op 'resembles'; use one of equals, exists, absent, matches, type, length"
    ]
    assert errors["expected_statuses"] == [
        "'7000' is not a status code: give whole numbers such as 200, 201."
    ]
    assert errors["tags"] == ["Tag 'xxxxxxxxxxxxxxxxxxxx…' is longer than 50 characters."]
    assert "max_latency_ms" in errors
    assert not TestCase.objects.exists()


def test_a_status_code_out_of_range_is_refused_like_the_api(client, engineer, interface_a):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/", form_data(expected_statuses="99")
    )
    assert lowered(errors_of(response)) == {
        "expected_statuses": ["status codes are integers from 100 to 599."]
    }


def test_a_second_case_with_the_same_name_is_refused(client, engineer, interface_a, case):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/", form_data(name="list customers")
    )
    assert errors_of(response) == {
        "name": ["INT-042 already has a test case named 'list customers'."]
    }
    assert TestCase.objects.count() == 1


def test_live_validation_answers_one_fields_errors_and_saves_nothing(client, engineer, interface_a):
    client.force_login(engineer)
    response = client.post(
        f"/interfaces/{interface_a.code}/test-cases/new/",
        {**form_data(steps="[1"), "_validate": "1"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="steps",
    )
    assert response.status_code == 200
    assert response.content.decode() == (
        '<ul class="errors"><li>Steps is not valid JSON: Expecting &#x27;,&#x27; delimiter '
        "(line 1, column 3).</li></ul>\n"
    )
    assert not TestCase.objects.exists()


# ---------------------------------------------------------------- edit


def test_edit_form_shows_the_stored_values(client, engineer, case):
    client.force_login(engineer)
    page = client.get(f"/test-cases/{case.pk}/edit/").content.decode()
    assert "Edit list customers" in page
    assert 'name="expected_statuses" value="200"' in page
    assert 'name="tags" value="smoke"' in page
    assert "{\n  &quot;Accept&quot;: &quot;application/json&quot;\n}</textarea>" in page


def test_engineer_edits_a_case_and_the_audit_records_the_change(client, engineer, case):
    client.force_login(engineer)
    response = client.post(
        f"/test-cases/{case.pk}/edit/",
        form_data(
            name="list customers",
            path="customers/",
            variables="",
            expected_statuses="200, 206",
            headers="",
        ),
    )
    assert response.status_code == 302, errors_of(response)
    assert response["Location"] == f"/test-cases/{case.pk}/"
    case.refresh_from_db()
    assert case.expected_statuses == [200, 206]
    assert case.headers == {}
    entry = case_audit(case.pk).get(action="update")
    assert entry.actor == engineer
    assert entry.changes["expected_statuses"] == [[200], [200, 206]]
    assert entry.changes["headers"] == [{"Accept": "application/json"}, {}]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"headers": "{not json"}, "headers"),
        ({"path": "customers/{{nobody}}/"}, "variables"),
        ({"method": "POST"}, "path"),
    ],
)
def test_a_refused_edit_changes_nothing(client, engineer, case, spec, overrides, field):
    client.force_login(engineer)
    data = form_data(**{"name": "renamed", "path": "customers/", "variables": "", **overrides})
    response = client.post(f"/test-cases/{case.pk}/edit/", data)
    assert response.status_code == 200
    assert list(errors_of(response)) == [field]
    case.refresh_from_db()
    assert case.name == "list customers" and case.method == "GET"
    assert not AuditEntry.objects.filter(action="update").exists()


# ---------------------------------------------------------------- delete


def test_delete_asks_for_confirmation_then_deletes_with_an_audit_entry(
    client, engineer, case, environment
):
    run = TestRun.objects.create(interface=case.interface, environment=environment)
    TestResult.objects.create(
        run=run, case=case, case_name=case.name, outcome="passed", correlation_id="c1"
    )
    client.force_login(engineer)
    page = client.get(f"/test-cases/{case.pk}/delete/").content.decode()
    assert "Delete the test case list customers of INT-042?" in page
    assert "Its 1 recorded result stays as evidence" in page
    assert TestCase.objects.filter(pk=case.pk).exists()

    response = client.post(f"/test-cases/{case.pk}/delete/")
    assert response.status_code == 302
    assert response["Location"] == "/interfaces/INT-042/test-cases/"
    assert not TestCase.objects.filter(pk=case.pk).exists()
    assert TestResult.objects.get().case_name == "list customers"
    entry = case_audit(case.pk).get(action="delete")
    assert entry.actor == engineer and entry.changes["name"] == ["list customers", None]


# ---------------------------------------------------------------- list


@pytest.fixture
def many_cases(interface_a):
    TestCase.objects.create(
        interface=interface_a, name="orders list", path="orders/", tags=["smoke"]
    )
    TestCase.objects.create(
        interface=interface_a,
        name="no token",
        path="customers/",
        kind="negative",
        tags=["security", "smoke-extra"],
    )
    TestCase.objects.create(
        interface=interface_a, name="retired", path="legacy/", is_active=False, tags=[]
    )


def names_in(response) -> list[str]:
    return [case.name for case in response.context["object_list"]]


def test_list_searches_by_name_and_path(client, engineer, interface_a, many_cases):
    client.force_login(engineer)
    url = f"/interfaces/{interface_a.code}/test-cases/"
    assert names_in(client.get(url)) == ["no token", "orders list", "retired"]
    assert names_in(client.get(url + "?q=ORDERS")) == ["orders list"]
    assert names_in(client.get(url + "?q=customers")) == ["no token"]


def test_list_filters_by_kind_tag_and_active(client, engineer, interface_a, many_cases):
    client.force_login(engineer)
    url = f"/interfaces/{interface_a.code}/test-cases/"
    assert names_in(client.get(url + "?kind=negative")) == ["no token"]
    assert names_in(client.get(url + "?tag=smoke")) == ["orders list"]  # whole tags only
    assert names_in(client.get(url + "?tag=security&kind=negative")) == ["no token"]
    assert names_in(client.get(url + "?is_active=false")) == ["retired"]


def test_list_shows_only_this_interfaces_cases(client, engineer, interface_a, interface_b):
    TestCase.objects.create(interface=interface_a, name="mine", path="a/")
    TestCase.objects.create(interface=interface_b, name="theirs", path="b/")
    client.force_login(engineer)
    assert names_in(client.get(f"/interfaces/{interface_a.code}/test-cases/")) == ["mine"]


def test_list_columns_and_htmx_partial(client, engineer, interface_a, many_cases):
    client.force_login(engineer)
    url = f"/interfaces/{interface_a.code}/test-cases/"
    page = client.get(url).content.decode()
    assert "<code>GET orders/</code>" in page and "Negative" in page and "Happy path" in page
    assert '<a class="tag" href="?tag=security">security</a>' in page
    assert '<span class="badge">inactive</span>' in page
    response = client.get(url + "?q=orders", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="list-table")
    partial = response.content.decode()
    assert "<html" not in partial and "orders list" in partial and "no token" not in partial


def test_list_paginates_and_exports_csv(client, engineer, interface_a):
    for number in range(30):
        TestCase.objects.create(interface=interface_a, name=f"case {number:02d}", path="x/")
    client.force_login(engineer)
    url = f"/interfaces/{interface_a.code}/test-cases/"
    assert "1–25 of 30" in client.get(url).content.decode()
    assert "26–30 of 30" in client.get(url + "?page=2").content.decode()
    response = client.get(url + "?format=csv&q=case 0")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "\ufeffname,kind,scenario,method,path,active,tags"
    assert lines[1] == "case 00,Contract,Happy path,GET,x/,yes,"
    assert len(lines) == 11


def test_list_has_constant_queries(client, engineer, interface_a, django_assert_num_queries):
    for number in range(30):
        TestCase.objects.create(interface=interface_a, name=f"case {number:02d}", path="x/")
    client.force_login(engineer)
    # session, user, interface, team ids (can_change), count, page
    with django_assert_num_queries(6):
        assert (
            client.get(f"/interfaces/{interface_a.code}/test-cases/?page_size=100").status_code
            == 200
        )


def test_empty_list_says_how_to_add_a_case(client, engineer, viewer, interface_a):
    client.force_login(engineer)
    page = client.get(f"/interfaces/{interface_a.code}/test-cases/").content.decode()
    assert "INT-042 has no test cases yet." in page
    assert 'href="/interfaces/INT-042/test-cases/new/">write a case with the form</a>' in page
    assert "POST /api/v1/test-cases/generate/" in page
    assert "import a Postman collection" in page
    filtered = client.get(f"/interfaces/{interface_a.code}/test-cases/?q=zzz").content.decode()
    assert "No test case matches these filters." in filtered
    client.force_login(viewer)
    page = client.get(f"/interfaces/{interface_a.code}/test-cases/").content.decode()
    assert "INT-042 has no test cases yet." in page and "/test-cases/new/" not in page


def test_unknown_interface_is_404(client, engineer):
    client.force_login(engineer)
    assert client.get("/interfaces/INT-999/test-cases/").status_code == 404
    assert client.get("/interfaces/INT-999/test-cases/new/").status_code == 404


def test_the_list_is_linked_from_the_contracts_and_interface_pages(client, engineer, interface_a):
    client.force_login(engineer)
    link = 'href="/interfaces/INT-042/test-cases/"'
    assert link in client.get("/interfaces/INT-042/contracts/").content.decode()
    assert link in client.get("/interfaces/INT-042/").content.decode()


# ---------------------------------------------------------------- detail


def test_detail_shows_the_case_its_results_and_history(client, engineer, interface_a, environment):
    client.force_login(engineer)
    client.post(f"/interfaces/{interface_a.code}/test-cases/new/", form_data())
    case = TestCase.objects.get()
    run = TestRun.objects.create(interface=interface_a, environment=environment)
    TestResult.objects.create(
        run=run,
        case=case,
        case_name=case.name,
        outcome="failed",
        correlation_id="c1",
        elapsed_ms=41.6,
        error="",
    )
    page = client.get(f"/test-cases/{case.pk}/").content.decode()
    assert "<h1>one customer</h1>" in page
    assert "<code>GET customers/{{customer_id}}/</code>" in page
    assert "200, 404" in page and "at most 800 ms" in page
    assert f'<a href="/test-runs/{run.pk}/">#{run.pk}</a>' in page
    assert "UAT" in page and "42 ms" in page and "Failed" in page
    assert "<strong>engineer</strong> created this" in page
    assert f'href="/test-cases/{case.pk}/edit/"' in page
    assert f'href="/test-cases/{case.pk}/delete/"' in page


def test_detail_shows_imported_scripts_as_text(client, engineer, case):
    case.scripts = "// test\npm.test('ok', () => pm.response.to.have.status(200));"
    case.save()
    client.force_login(engineer)
    page = client.get(f"/test-cases/{case.pk}/").content.decode()
    assert "Imported Postman scripts" in page and "Pontis never executes them" in page
    assert "pm.test(&#x27;ok&#x27;" in page


def test_detail_queries_do_not_grow_with_results(
    client, engineer, case, environment, django_assert_num_queries
):
    def add_results(count):
        for _ in range(count):
            run = TestRun.objects.create(interface=case.interface, environment=environment)
            TestResult.objects.create(
                run=run, case=case, case_name=case.name, outcome="passed", correlation_id="c"
            )

    client.force_login(engineer)
    url = f"/test-cases/{case.pk}/"
    # session, user, case with its interface, results with run and environment,
    # history, team ids (can_change)
    add_results(1)
    with django_assert_num_queries(6):
        page = client.get(url).content.decode()
    assert page.count('href="/test-runs/') == 1
    add_results(30)
    with django_assert_num_queries(6):
        page = client.get(url).content.decode()
    assert page.count('href="/test-runs/') == 20  # the most recent ones


# ---------------------------------------------------------------- roles


def test_viewer_reads_but_gets_403_on_every_form(client, viewer, case):
    client.force_login(viewer)
    code = case.interface.code
    assert client.get(f"/interfaces/{code}/test-cases/").status_code == 200
    detail = client.get(f"/test-cases/{case.pk}/").content.decode()
    assert "Edit" not in detail and "Delete" not in detail
    listing = client.get(f"/interfaces/{code}/test-cases/").content.decode()
    assert "New test case" not in listing
    for url in (
        f"/interfaces/{code}/test-cases/new/",
        f"/test-cases/{case.pk}/edit/",
        f"/test-cases/{case.pk}/delete/",
    ):
        assert client.get(url).status_code == 403, url
        assert client.post(url, form_data(name="viewer's")).status_code == 403, url
    assert TestCase.objects.get().name == "list customers"
    assert not AuditEntry.objects.exists()


def test_another_teams_engineer_gets_403_and_no_buttons(client, engineer_b, case):
    client.force_login(engineer_b)
    code = case.interface.code
    assert "New test case" not in client.get(f"/interfaces/{code}/test-cases/").content.decode()
    detail = client.get(f"/test-cases/{case.pk}/").content.decode()
    assert "/edit/" not in detail and "/delete/" not in detail
    for url in (
        f"/interfaces/{code}/test-cases/new/",
        f"/test-cases/{case.pk}/edit/",
        f"/test-cases/{case.pk}/delete/",
    ):
        assert client.get(url).status_code == 403, url
        assert client.post(url, form_data(name="hijacked")).status_code == 403, url
    assert TestCase.objects.get().name == "list customers"
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("persona", ["engineer", "lead", "admin_user"])
def test_own_team_and_admin_may_create_edit_and_delete(request, client, persona, interface_a):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    assert "New test case" in client.get("/interfaces/INT-042/test-cases/").content.decode()
    response = client.post("/interfaces/INT-042/test-cases/new/", form_data())
    assert response.status_code == 302, errors_of(response)
    case = TestCase.objects.get()
    response = client.post(f"/test-cases/{case.pk}/edit/", form_data(name="renamed"))
    assert response.status_code == 302, errors_of(response)
    assert client.post(f"/test-cases/{case.pk}/delete/").status_code == 302
    assert not TestCase.objects.exists()
    actions = list(
        case_audit(case.pk).order_by("created_at", "pk").values_list("action", "actor_name")
    )
    assert actions == [
        ("create", user.username),
        ("update", user.username),
        ("delete", user.username),
    ]


def test_anonymous_is_sent_to_sign_in(client, case):
    for url in (
        "/interfaces/INT-042/test-cases/",
        "/interfaces/INT-042/test-cases/new/",
        f"/test-cases/{case.pk}/",
        f"/test-cases/{case.pk}/edit/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# ---------------------------------------------------------------- API fields


def test_api_reads_and_writes_the_new_fields_and_keeps_scripts_read_only(
    engineer, api_as, interface_a
):
    client = api_as(engineer)
    response = client.post(
        "/api/v1/test-cases/",
        {
            "interface": "INT-042",
            "name": "xml order",
            "method": "POST",
            "path": "orders/",
            "body_format": "xml",
            "body_text": "<order><id>{{order_id}}</id></order>",
            "variables": {"order_id": "O-1"},
            "extract": {"order_id": "$.id"},
            "steps": [{"method": "GET", "path": "orders/{{order_id}}/"}],
            "manual_steps": "",
            "expected_result": "",
            "scripts": "pm.environment.set('x', 1)",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["body_format"] == "xml"
    assert body["body_text"] == "<order><id>{{order_id}}</id></order>"
    assert body["extract"] == {"order_id": "$.id"}
    assert body["steps"] == [{"method": "GET", "path": "orders/{{order_id}}/"}]
    assert body["scripts"] == ""
    assert TestCase.objects.get().scripts == ""


def test_api_refuses_the_same_json_shapes_as_the_form(engineer, api_as, interface_a):
    response = api_as(engineer).post(
        "/api/v1/test-cases/",
        {
            "interface": "INT-042",
            "name": "bad shapes",
            "path": "orders/",
            "steps": {"method": "GET"},
            "extract": {"id": 1},
        },
        format="json",
    )
    assert response.status_code == 400
    errors = {(e["field"], e["message"]) for e in response.json()["errors"]}
    assert errors == {
        ("steps", "steps must be a JSON array, not an object."),
        ("extract", "extract: the value of 'id' must be a JSON string, not an integer."),
    }
    assert not TestCase.objects.exists()
