"""The baseline of known findings: who may accept and revoke them, in the UI and the API."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.accounts.models import Role
from apps.core.models import AuditAction, AuditEntry, JobStatus
from apps.testing import baseline, checks
from apps.testing.models import KnownFinding, TestCase, TestResult, TestRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
SCHEMA_CHECK = {
    "name": checks.RESPONSE_SCHEMA,
    "passed": False,
    "message": "2 violation(s); first: $.total is a string, expected a number",
    "details": [
        {"path": "$.total", "keyword": "type", "message": "$.total is a string, expected a number"},
        {"path": "$.id", "keyword": "required", "message": "$.id is missing"},
    ],
}
ASSERTION_CHECK = {
    "name": "assert $.status equals 'paid'",
    "passed": False,
    "message": "$.status: is 'open', expected 'paid'",
    "details": ["$.status: is 'open', expected 'paid'"],
}
PASSED_CHECK = {"name": checks.STATUS_CODE, "passed": True, "message": "200 is documented"}


@pytest.fixture
def lead_b(team_b):
    return UserFactory(username="lead_b", role=Role.LEAD, teams=[team_b])


@pytest.fixture
def case(interface_a):
    return TestCase.objects.create(interface=interface_a, name="get invoice", path="invoices/1")


@pytest.fixture
def failed_result(interface_a, environment, case):
    run = TestRun.objects.create(
        interface=interface_a, environment=environment, status=JobStatus.FAILED, failed=1
    )
    return TestResult.objects.create(
        run=run,
        case=case,
        case_name=case.name,
        outcome="failed",
        correlation_id="c-1",
        checks=[PASSED_CHECK, SCHEMA_CHECK, ASSERTION_CHECK],
    )


@pytest.fixture
def finding(interface_a, case, lead):
    return KnownFinding.objects.create(
        interface=interface_a,
        case=case,
        check_name=checks.RESPONSE_SCHEMA,
        contains="$.total is a string",
        reason="The partner fixes the type in release 7.",
        accepted_by=lead,
    )


# ---------------------------------------------------------------- domain


def test_a_lead_accepts_a_finding_with_an_audit_entry(lead, interface_a, case):
    finding = baseline.accept_finding(
        lead,
        interface=interface_a,
        case=case,
        check_name=checks.RESPONSE_SCHEMA,
        contains="  $.total is a string ",
        reason="Known partner bug.",
        expires_on=TODAY + timedelta(days=30),
    )
    assert finding.accepted_by == lead
    assert finding.contains == "$.total is a string"
    entry = AuditEntry.objects.get()
    assert entry.action == AuditAction.CREATE and entry.actor == lead
    assert entry.changes["reason"] == [None, "Known partner bug."]


@pytest.mark.parametrize(
    "fields, errors",
    [
        (
            {"reason": "  "},
            {"reason": ["Say why this failure is accepted."]},
        ),
        (
            {"check_name": "made up"},
            {"check_name": ["'made up' is not a check name."]},
        ),
        (
            {"expires_on": TODAY},
            {"expires_on": ["The end date must be in the future."]},
        ),
        (
            {"check_name": ""},
            {
                "__all__": [
                    "Name a case, a check or a text to look for: an empty finding would accept every failure."
                ]
            },
        ),
    ],
)
def test_a_bad_finding_is_refused_and_nothing_is_saved(lead, interface_a, fields, errors):
    values = {"reason": "why", "check_name": checks.STATUS_CODE, **fields}
    with pytest.raises(ValidationError) as caught:
        baseline.accept_finding(lead, interface=interface_a, **values)
    assert caught.value.message_dict == errors
    assert not KnownFinding.objects.exists() and not AuditEntry.objects.exists()


def test_a_finding_cannot_name_another_interfaces_case(admin_user, interface_a, interface_b):
    other = TestCase.objects.create(interface=interface_b, name="orders", path="orders/")
    with pytest.raises(ValidationError) as caught:
        baseline.accept_finding(admin_user, interface=interface_a, case=other, reason="x")
    assert caught.value.message_dict == {"case": ["orders is not a test case of INT-042."]}


def test_an_assertions_name_is_a_check_name():
    assert baseline.is_check_name("assert $.status equals 'paid'")
    assert baseline.is_check_name(checks.RESPONSE_HEADERS)
    assert not baseline.is_check_name("anything")


@pytest.mark.parametrize("persona", ["viewer", "engineer", "lead_b"])
def test_only_leads_of_the_owning_team_and_admins_accept(request, persona, interface_a):
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        baseline.accept_finding(user, interface=interface_a, check_name="x", reason="y")
    assert not KnownFinding.objects.exists()


def test_active_findings_apply_through_their_last_day(interface_a, lead):
    def make(expires_on):
        return KnownFinding.objects.create(
            interface=interface_a, check_name="x", reason="r", expires_on=expires_on
        )

    forever = make(None)
    today = make(TODAY)
    make(TODAY - timedelta(days=1))
    assert set(baseline.active_findings(interface_a, TODAY)) == {forever, today}


def test_the_prefill_is_the_first_violation_of_the_failed_check(failed_result, case):
    assert baseline.prefill_from_check(failed_result, 1) == {
        "case": case.pk,
        "check_name": checks.RESPONSE_SCHEMA,
        "contains": "$.total is a string, expected a number",
    }
    assert baseline.prefill_from_check(failed_result, 2)["check_name"] == (
        "assert $.status equals 'paid'"
    )
    assert baseline.prefill_from_check(failed_result, 0) == {}  # it passed
    assert baseline.prefill_from_check(failed_result, 9) == {}


# ---------------------------------------------------------------- browser views


def test_everyone_reads_the_baseline_but_only_managers_see_controls(
    client, viewer, engineer, lead, finding, interface_a
):
    expired = KnownFinding.objects.create(
        interface=interface_a,
        contains="timeout",
        reason="Slow test system last quarter.",
        expires_on=TODAY - timedelta(days=3),
    )
    for user, controls in [(viewer, False), (engineer, False), (lead, True)]:
        client.force_login(user)
        response = client.get("/interfaces/INT-042/baseline/")
        assert response.status_code == 200
        page = response.content.decode()
        assert "Active (1)" in page and "Expired (1)" in page
        assert "The partner fixes the type in release 7." in page
        assert "Slow test system last quarter." in page
        assert f"#{finding.pk}" in page and f"#{expired.pk}" in page
        assert ("Accept a known finding" in page) is controls
        assert ("Revoke" in page) is controls


@pytest.mark.parametrize("persona", ["viewer", "engineer", "lead_b"])
def test_others_get_403_on_the_add_and_revoke_forms(request, client, persona, finding):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/interfaces/INT-042/baseline/new/").status_code == 403
    response = client.post(
        "/interfaces/INT-042/baseline/new/", {"check_name": checks.STATUS_CODE, "reason": "x"}
    )
    assert response.status_code == 403
    assert client.get(f"/known-findings/{finding.pk}/revoke/").status_code == 403
    assert client.post(f"/known-findings/{finding.pk}/revoke/").status_code == 403
    assert KnownFinding.objects.count() == 1 and not AuditEntry.objects.exists()


@pytest.mark.parametrize("persona", ["lead", "admin_user"])
def test_a_manager_accepts_then_revokes_from_the_pages(request, client, persona, case):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    assert client.get("/interfaces/INT-042/baseline/new/").status_code == 200
    response = client.post(
        "/interfaces/INT-042/baseline/new/",
        {
            "case": case.pk,
            "check_name": checks.STATUS_CODE,
            "contains": "expected 200",
            "reason": "Partner answers 201.",
            "expires_on": (TODAY + timedelta(days=7)).isoformat(),
            "accepted_by": "someone else",
        },
    )
    finding = KnownFinding.objects.get()
    assert response.status_code == 302 and response["Location"] == "/interfaces/INT-042/baseline/"
    assert finding.accepted_by == user and finding.case == case
    assert finding.expires_on == TODAY + timedelta(days=7)

    confirm = client.get(f"/known-findings/{finding.pk}/revoke/")
    assert confirm.status_code == 200 and "Partner answers 201." in confirm.content.decode()
    response = client.post(f"/known-findings/{finding.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/interfaces/INT-042/baseline/"
    assert not KnownFinding.objects.exists()
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("pk")) == [
        AuditAction.CREATE,
        AuditAction.DELETE,
    ]


def test_the_add_form_shows_field_errors(client, lead, interface_a):
    client.force_login(lead)
    response = client.post(
        "/interfaces/INT-042/baseline/new/",
        {"check_name": checks.STATUS_CODE, "reason": "x", "expires_on": TODAY.isoformat()},
    )
    assert response.status_code == 200
    assert "The end date must be in the future." in response.content.decode()
    assert not KnownFinding.objects.exists()


def test_a_failed_check_links_to_a_prefilled_form_for_managers_only(
    client, lead, engineer, failed_result, case
):
    run_page = f"/test-runs/{failed_result.run_id}/"
    link = f"/interfaces/INT-042/baseline/new/?result={failed_result.pk}&amp;check=1"
    client.force_login(engineer)
    assert "Accept as known finding" not in client.get(run_page).content.decode()

    client.force_login(lead)
    page = client.get(run_page).content.decode()
    assert page.count("Accept as known finding") == 2  # the two failed checks, not the passed one
    assert link in page
    form = client.get(link.replace("&amp;", "&")).context["form"]
    assert form.initial == {
        "case": case.pk,
        "check_name": checks.RESPONSE_SCHEMA,
        "contains": "$.total is a string, expected a number",
    }
    form = client.get(
        f"/interfaces/INT-042/baseline/new/?result={failed_result.pk}&check=2"
    ).context["form"]
    assert form.initial["check_name"] == "assert $.status equals 'paid'"
    assert ("assert $.status equals 'paid'",) * 2 in form.fields["check_name"].choices


def test_a_result_of_another_interface_prefills_nothing(client, lead, failed_result, interface_b):
    failed_result.run.interface = interface_b
    failed_result.run.save()
    client.force_login(lead)
    form = client.get(
        f"/interfaces/INT-042/baseline/new/?result={failed_result.pk}&check=1"
    ).context["form"]
    assert form.initial == {}


# ---------------------------------------------------------------- API


def test_everyone_lists_findings_filtered_by_interface(api_as, viewer, finding, interface_b):
    KnownFinding.objects.create(interface=interface_b, check_name="x", reason="other")
    response = api_as(viewer).get("/api/v1/known-findings/?interface__code=INT-042")
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "id": finding.pk,
            "interface": "INT-042",
            "case": finding.case_id,
            "check_name": checks.RESPONSE_SCHEMA,
            "contains": "$.total is a string",
            "reason": "The partner fixes the type in release 7.",
            "expires_on": None,
            "accepted_by": "lead",
            "is_active": True,
            "created_at": finding.created_at.isoformat().replace("+00:00", "Z"),
        }
    ]


def test_listing_findings_takes_the_same_queries_for_one_or_many(
    api_as, viewer, interface_a, django_assert_num_queries
):
    client = api_as(viewer)
    client.get("/api/v1/known-findings/")  # the token's first use is recorded once
    for count in (1, 6):
        while KnownFinding.objects.count() < count:
            KnownFinding.objects.create(interface=interface_a, check_name="x", reason="r")
        # the token with its user, the page's count, the page with interfaces and users
        with django_assert_num_queries(3):
            response = client.get("/api/v1/known-findings/")
        assert len(response.json()["results"]) == count


@pytest.mark.parametrize("persona", ["lead", "admin_user"])
def test_a_manager_accepts_and_revokes_through_the_api(request, api_as, persona, case):
    user = request.getfixturevalue(persona)
    client = api_as(user)
    response = client.post(
        "/api/v1/known-findings/",
        {
            "interface": "INT-042",
            "case": case.pk,
            "check_name": checks.NOT_SERVER_ERROR,
            "reason": "Sandbox answers 503 at night.",
            "accepted_by": "someone else",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["accepted_by"] == user.username and body["is_active"] is True
    assert client.get(f"/api/v1/known-findings/{body['id']}/").status_code == 200
    assert client.patch(f"/api/v1/known-findings/{body['id']}/", {}).status_code == 405
    assert client.delete(f"/api/v1/known-findings/{body['id']}/").status_code == 204
    assert not KnownFinding.objects.exists()
    assert AuditEntry.objects.filter(action=AuditAction.DELETE).count() == 1


@pytest.mark.parametrize("persona", ["viewer", "engineer", "engineer_b", "lead_b"])
def test_others_get_403_from_the_api(request, api_as, persona, finding):
    client = api_as(request.getfixturevalue(persona))
    response = client.post(
        "/api/v1/known-findings/",
        {"interface": "INT-042", "check_name": checks.STATUS_CODE, "reason": "x"},
        format="json",
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert client.delete(f"/api/v1/known-findings/{finding.pk}/").status_code == 403
    assert KnownFinding.objects.count() == 1 and not AuditEntry.objects.exists()


def test_a_lead_of_the_owning_team_gets_403_elsewhere_with_the_reason(api_as, lead, interface_b):
    response = api_as(lead).post(
        "/api/v1/known-findings/",
        {"interface": "INT-043", "check_name": checks.STATUS_CODE, "reason": "x"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["detail"] == baseline.REFUSAL


def test_the_api_names_the_wrong_fields(api_as, lead, interface_a):
    response = api_as(lead).post(
        "/api/v1/known-findings/",
        {
            "interface": "INT-042",
            "check_name": "made up",
            "reason": "x",
            "expires_on": (TODAY - timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert errors == {
        "check_name": "'made up' is not a check name.",
        "expires_on": "The end date must be in the future.",
    }
    response = api_as(lead).post(
        "/api/v1/known-findings/", {"interface": "INT-042", "reason": "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] is None
