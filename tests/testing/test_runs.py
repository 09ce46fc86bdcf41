"""Contract-test runs against the demo partner API served by the live test server."""

import xml.etree.ElementTree as ET  # noqa: S405 - defused process-wide

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.catalog import services as catalog_services
from apps.catalog.models import Endpoint
from apps.core.models import JobStatus
from apps.demo_partner.data import SPEC_PATH
from apps.testing.models import TestCase, TestResult, TestRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def partner(live_server, engineer, interface_a, environment):
    """INT-042 pointed at the demo partner, with its spec uploaded and a bearer token stored."""
    port = live_server.url.rsplit(":", 1)[1]
    endpoint = Endpoint(
        interface=interface_a,
        environment=environment,
        base_url=f"http://127.0.0.1:{port}/demo-partner/",
        auth_type="bearer",
        timeout_seconds=10,
    )
    catalog_services.save_endpoint(
        engineer, endpoint, {"token": settings.PONTIS_DEMO_PARTNER_TOKEN}
    )
    catalog_services.upload_spec(
        engineer, interface_a, SPEC_PATH.read_bytes(), filename="openapi.yaml"
    )
    return endpoint


def create_case(client, **fields):
    payload = {"interface": "INT-042", "method": "GET", **fields}
    response = client.post("/api/v1/test-cases/", payload, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_suite_runs_and_keeps_masked_evidence(partner, engineer, api_as):
    client = api_as(engineer)
    create_case(
        client,
        name="list customers",
        path="customers/",
        max_latency_ms=5000,
        assertions=[{"path": "$.count", "op": "type", "value": "integer"}],
    )
    create_case(
        client,
        name="one customer",
        path="customers/{{customer_id}}/",
        variables={"customer_id": "C-10001"},
        assertions=[{"path": "$.id", "op": "equals", "value": "C-10001"}],
    )
    create_case(
        client,
        name="no token is refused",
        path="customers/",
        kind="negative",
        send_credentials=False,
        expected_statuses=[401],
    )
    create_case(client, name="wrong expectation", path="invoices/", expected_statuses=[201])

    response = client.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    )
    assert response.status_code == 202, response.json()
    run = client.get(f"/api/v1/test-runs/{response.json()['id']}/wait/?timeout=30").json()
    assert run["status"] == "failed"
    assert (run["passed"], run["failed"], run["errored"]) == (3, 1, 0)
    assert run["spec_version"] == 1

    results = {
        r["case_name"]: r
        for r in client.get(f"/api/v1/test-runs/{run['id']}/results/").json()["results"]
    }
    listed = results["list customers"]
    names = [c["name"] for c in listed["checks"]]
    assert names[:4] == [
        "status code conforms",
        "not a server error",
        "content type conforms",
        "response schema conforms",
    ]
    assert "within max latency" in names
    assert all(c["passed"] for c in listed["checks"])
    assert listed["request"]["headers"]["Authorization"] == "Bearer [masked]"
    assert settings.PONTIS_DEMO_PARTNER_TOKEN not in str(
        TestResult.objects.values_list("request", "response")
    )
    assert listed["response"]["status"] == 200
    emails = [c["email"] for c in listed["response"]["body"]["results"]]
    assert emails and all(e.startswith("[masked]@") for e in emails)
    negative = results["no token is refused"]
    assert any(
        c["name"] == "request without credentials rejected" and c["passed"]
        for c in negative["checks"]
    )
    wrong = results["wrong expectation"]
    assert wrong["outcome"] == "failed"
    assert [c for c in wrong["checks"] if c["passed"] is False][0]["message"] == "200, expected 201"

    junit = ET.fromstring(client.get(f"/api/v1/test-runs/{run['id']}/junit/").content)  # noqa: S314
    assert junit.get("tests") == "4" and junit.get("failures") == "1"


def test_a_second_active_run_is_refused_with_409(
    partner, engineer, api_as, environment, interface_a
):
    TestRun.objects.create(interface=interface_a, environment=environment)  # queued, no worker here
    response = api_as(engineer).post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    )
    assert response.status_code == 409
    assert response["Location"].endswith(f"/api/v1/test-runs/{TestRun.objects.get().pk}/")


def test_cases_are_validated_when_saved(partner, engineer, api_as):
    client = api_as(engineer)
    response = client.post(
        "/api/v1/test-cases/",
        {
            "interface": "INT-042",
            "name": "bad",
            "method": "GET",
            "path": "customers/{{who}}/",
            "assertions": [
                {"path": "$..[", "op": "equals", "value": 1},
                {"path": "$.id", "op": "matches", "value": "("},
            ],
        },
        format="json",
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"assertions", "variables"}
    response = client.post(
        "/api/v1/test-cases/",
        {"interface": "INT-042", "name": "nowhere", "method": "DELETE", "path": "customers/"},
        format="json",
    )
    assert response.status_code == 400
    assert (
        response.json()["errors"][0]["message"]
        == "DELETE /customers/ is not an operation of spec v1."
    )
    assert not TestCase.objects.exists()


def test_viewer_cannot_write_cases_or_start_runs(partner, viewer, api_as):
    client = api_as(viewer)
    assert (
        client.post(
            "/api/v1/test-cases/",
            {"interface": "INT-042", "name": "x", "path": "customers/"},
            format="json",
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
        ).status_code
        == 403
    )


def test_run_tests_command_writes_junit_and_exits_non_zero_on_failure(
    partner, engineer, admin_user, tmp_path, capsys
):
    TestCase.objects.create(interface=partner.interface, name="orders", path="orders/")
    TestCase.objects.create(
        interface=partner.interface, name="teapot", path="orders/", expected_statuses=[418]
    )
    out = tmp_path / "out.xml"
    with pytest.raises(SystemExit) as exit_info:
        call_command("run_tests", "--interface", "int-042", "--env", "uat", "--junit", str(out))
    assert exit_info.value.code == 1
    printed = capsys.readouterr().out
    assert "PASSED   orders" in printed and "FAILED   teapot" in printed
    suite = ET.fromstring(out.read_bytes())  # noqa: S314
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert TestRun.objects.get().status == JobStatus.FAILED


def test_run_tests_command_succeeds_when_all_pass(partner, admin_user, capsys):
    TestCase.objects.create(interface=partner.interface, name="invoices", path="invoices/")
    call_command("run_tests", "--interface", "INT-042", "--env", "uat")
    assert "1 passed, 0 failed, 0 errored" in capsys.readouterr().out


def test_unreachable_endpoint_errors_each_case_and_the_run_finishes(
    partner, admin_user, environment
):
    Endpoint.objects.filter(pk=partner.pk).update(base_url="http://127.0.0.1:9/")
    TestCase.objects.create(interface=partner.interface, name="a", path="orders/")
    with pytest.raises(SystemExit):
        call_command("run_tests", "--interface", "INT-042", "--env", "uat")
    result = TestResult.objects.get()
    assert result.outcome == "errored" and "refused" in result.error.lower()


def test_contract_compliance_figures(partner, engineer, api_as, client):
    api = api_as(engineer)
    create_case(api, name="list customers", path="customers/")
    create_case(
        api,
        name="no token",
        path="customers/",
        kind="negative",
        send_credentials=False,
        expected_statuses=[401],
    )
    before = api.get("/api/v1/compliance/INT-042/").json()
    total = before["documented_responses"]
    assert total > 10
    assert before["environments"] == [
        {
            "environment": "UAT",
            "latest_run_id": None,
            "latest_run_status": None,
            "passed_against_current_spec": False,
            "covered": 2,
            "conforming": 0,
            "total": total,
            "coverage": round(2 / total, 4),
            "conformance": 0.0,
        }
    ]
    assert "GET /customers/" not in before["operations_without_test"]
    assert "POST /orders/" in before["operations_without_test"]

    run = api.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    ).json()
    api.get(f"/api/v1/test-runs/{run['id']}/wait/?timeout=30")
    after = api.get("/api/v1/compliance/INT-042/").json()["environments"][0]
    assert after["passed_against_current_spec"] is True
    assert (after["covered"], after["conforming"], after["conformance"]) == (2, 2, 1.0)

    client.force_login(engineer)
    page = client.get("/interfaces/INT-042/contracts/").content.decode()
    assert "Operations no test case exercises" in page and "POST /orders/" in page


def test_generate_cases_from_the_spec_plan_then_apply_then_run(partner, engineer, api_as):
    api = api_as(engineer)
    plan = api.post("/api/v1/test-cases/generate/", {"interface": "INT-042"}, format="json").json()
    assert plan["applied"] is False and plan["spec_version"] == 1
    names = sorted(p["name"] for p in plan["add"])
    assert "listCustomers returns 200" in names and "createOrder returns 201" in names
    assert not TestCase.objects.exists()

    applied = api.post(
        "/api/v1/test-cases/generate/", {"interface": "INT-042", "apply": True}, format="json"
    ).json()
    assert len(applied["add"]) == TestCase.objects.count() == len(plan["add"])
    again = api.post("/api/v1/test-cases/generate/", {"interface": "INT-042"}, format="json").json()
    assert (again["add"], again["change"], again["drop"], again["unchanged"]) == (
        [],
        [],
        [],
        len(plan["add"]),
    )

    run = api.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    ).json()
    finished = api.get(f"/api/v1/test-runs/{run['id']}/wait/?timeout=60").json()
    results = {
        r["case_name"]: r
        for r in api.get(f"/api/v1/test-runs/{run['id']}/results/?page_size=100").json()["results"]
    }
    assert results["listCustomers returns 200"]["outcome"] == "passed", results[
        "listCustomers returns 200"
    ]["checks"]
    assert finished["passed"] >= 4


def test_regeneration_after_a_spec_change_shows_what_would_be_dropped(
    partner, engineer, api_as, interface_a
):
    import yaml

    api = api_as(engineer)
    api.post("/api/v1/test-cases/generate/", {"interface": "INT-042", "apply": True}, format="json")
    document = yaml.safe_load(SPEC_PATH.read_text())
    del document["paths"]["/invoices/{number}/"]
    document["info"]["version"] = "1.1.0"
    catalog_services.upload_spec(
        engineer, interface_a, yaml.safe_dump(document), filename="v2.yaml"
    )
    plan = api.post("/api/v1/test-cases/generate/", {"interface": "INT-042"}, format="json").json()
    assert plan["spec_version"] == 2
    assert [d["name"] for d in plan["drop"]] == ["getInvoice returns 200"]
    assert plan["add"] == [] and plan["change"] == []


def test_raise_a_defect_from_a_failed_result(partner, engineer, api_as, client):
    api = api_as(engineer)
    create_case(api, name="teapot", path="invoices/", expected_statuses=[418])
    run = api.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    ).json()
    api.get(f"/api/v1/test-runs/{run['id']}/wait/?timeout=30")
    result = TestResult.objects.get()
    response = api.post(
        "/api/v1/defects/from-result/", {"result": result.pk, "severity": "high"}, format="json"
    )
    assert response.status_code == 201, response.json()
    defect = response.json()
    assert defect["title"] == "INT-042 teapot: status code conforms"
    assert (
        defect["phase_found"] == "uat"
        and defect["severity"] == "high"
        and defect["status"] == "open"
    )
    assert defect["correlation_id"] == result.correlation_id
    assert defect["actual"].startswith("status code conforms: 200, expected 418")
    assert len(defect["payload_sample"]["results"]) == 2
    listed = api.get("/api/v1/defects/?status=open&severity=high").json()
    assert [d["id"] for d in listed["results"]] == [defect["id"]]

    client.force_login(engineer)
    page = client.get(f"/defects/{defect['id']}/").content.decode()
    assert f"run #{run['id']}, teapot" in page
    assert "DEF-" in client.get("/defects/?status=open").content.decode()


def test_a_passed_result_raises_no_defect(partner, engineer, api_as):
    api = api_as(engineer)
    create_case(api, name="fine", path="invoices/")
    run = api.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    ).json()
    api.get(f"/api/v1/test-runs/{run['id']}/wait/?timeout=30")
    response = api.post(
        "/api/v1/defects/from-result/", {"result": TestResult.objects.get().pk}, format="json"
    )
    assert response.status_code == 400
    assert (
        response.json()["errors"][0]["message"] == "This result passed: there is nothing to raise."
    )


def test_cancel_a_queued_run_from_the_page(partner, engineer, client, interface_a, environment):
    run = TestRun.objects.create(interface=interface_a, environment=environment)
    client.force_login(engineer)
    assert "Cancel run" in client.get(f"/test-runs/{run.pk}/").content.decode()
    response = client.post(f"/test-runs/{run.pk}/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED


def test_evidence_pack_of_a_finished_run(
    partner, engineer, api_as, client, interface_a, environment
):
    import io
    import json
    import zipfile

    api = api_as(engineer)
    create_case(api, name="list customers", path="customers/")
    run = api.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    ).json()
    api.get(f"/api/v1/test-runs/{run['id']}/wait/?timeout=30")
    response = api.get(f"/api/v1/test-runs/{run['id']}/evidence-pack/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert names == ["summary.html", "run.json", "results/0001-list-customers.json"]
    summary = archive.read("summary.html").decode()
    assert "Test evidence: INT-042" in summary and "response schema conforms" in summary
    result = json.loads(archive.read("results/0001-list-customers.json"))
    assert (
        result["outcome"] == "passed"
        and result["request"]["headers"]["Authorization"] == "Bearer [masked]"
    )
    assert all(
        settings.PONTIS_DEMO_PARTNER_TOKEN not in archive.read(name).decode() for name in names
    )
    client.force_login(engineer)
    assert client.get(f"/test-runs/{run['id']}/evidence.zip").status_code == 200

    active = TestRun.objects.create(interface=interface_a, environment=environment)
    refused = api.get(f"/api/v1/test-runs/{active.pk}/evidence-pack/")
    assert refused.status_code == 409
    assert (
        refused.json()["detail"]
        == f"Run #{active.pk} is still queued: its evidence is not final yet."
    )


def test_compare_a_failure_with_the_last_pass(partner, engineer, api_as, client):
    api = api_as(engineer)
    case = create_case(api, name="invoices", path="invoices/")
    first = api.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    ).json()
    api.get(f"/api/v1/test-runs/{first['id']}/wait/?timeout=30")
    api.patch(f"/api/v1/test-cases/{case['id']}/", {"expected_statuses": [418]}, format="json")
    second = api.post(
        "/api/v1/test-runs/", {"interface": "INT-042", "environment": "uat"}, format="json"
    ).json()
    api.get(f"/api/v1/test-runs/{second['id']}/wait/?timeout=30")
    failed = TestResult.objects.get(run_id=second["id"])
    client.force_login(engineer)
    page = client.get(f"/test-results/{failed.pk}/compare/").content.decode()
    assert (
        f"Run #{first['id']}" in page
        and "Passed" in page
        and "status code conforms: 200, expected 418" in page
    )
    first_result = TestResult.objects.get(run_id=first["id"])
    assert (
        "No earlier pass"
        in client.get(f"/test-results/{first_result.pk}/compare/").content.decode()
    )
    assert "Pass rate" in client.get("/interfaces/INT-042/contracts/").content.decode()
