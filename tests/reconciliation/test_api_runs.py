"""REST API of reconciliation runs: the figures, waiting for a run, cancelling it, the
difference report as a download, defects from a run below its target, the team policy."""

from decimal import Decimal

import pytest
from django.conf import settings

from apps.core import jobs
from apps.core.models import AuditEntry, JobStatus
from apps.reconciliation import api, services
from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
from apps.reconciliation.runner import run_job
from apps.testing.models import Defect
from tests.reconciliation.test_runs import SOURCE_CSV, TARGET_CSV, file_source

pytestmark = pytest.mark.django_db

URL = "/api/v1/reconciliation-runs/"


@pytest.fixture
def job(engineer, team_a, interface_a):
    source = services.save_data_source(engineer, file_source(team_a, "erp-orders", SOURCE_CSV))
    target = services.save_data_source(engineer, file_source(team_a, "crm-orders", TARGET_CSV))
    return services.save_job(
        engineer,
        ReconciliationJob(
            interface=interface_a,
            name="orders",
            source=source,
            target=target,
            key_columns=["order_id"],
            compare_columns=["amount", "booked_at", "status"],
            column_mapping={
                "order_id": "ID",
                "amount": "AMOUNT",
                "booked_at": "BOOKED",
                "status": "STATUS",
            },
            normalisation={
                "order_id": {"type": "integer"},
                "amount": {"type": "number"},
                "booked_at": {"type": "datetime"},
            },
        ),
    )


def finish(run: ReconciliationRun) -> ReconciliationRun:
    jobs.execute(ReconciliationRun, run.pk, run_job)
    run.refresh_from_db()
    return run


@pytest.fixture
def failed_run(engineer, job):
    return finish(services.start_run(engineer, job))


# --------------------------------------------------------------------------------------
# Reading runs
# --------------------------------------------------------------------------------------


def test_a_finished_run_shows_every_figure(api_as, engineer, job, failed_run):
    response = api_as(engineer).get(f"{URL}{failed_run.pk}/")
    assert response.status_code == 200
    body = response.json()
    samples = body.pop("samples")
    assert body == {
        "id": failed_run.pk,
        "job": job.pk,
        "job_name": "orders",
        "interface": "INT-042",
        "status": "failed",
        "scheduled": False,
        "requested_by": "engineer",
        "strategy": "streamed",
        "window": None,
        "progress_done": body["progress_done"],
        "progress_total": 0,
        "progress_note": "Compared",
        "source_rows": 6,
        "target_rows": 5,
        "matched": 2,
        "mismatched": 1,
        "missing_in_target": 1,
        "unexpected_in_target": 1,
        "duplicates": 1,
        "duplicate_source_keys": 1,
        "duplicate_source_rows": 2,
        "duplicate_target_keys": 0,
        "duplicate_target_rows": 0,
        "column_mismatches": {"amount": 1, "booked_at": 0, "status": 0},
        "accuracy": 33.333,
        "accuracy_target": 99.5,
        "met_target": False,
        "error": "Accuracy 33.333% is below the target of 99.500%.",
        "report_url": f"http://testserver/api/v1/reconciliation-runs/{failed_run.pk}/report/",
        "defect": None,
        "attempts": 1,
        "created_at": body["created_at"],
        "started_at": body["started_at"],
        "finished_at": body["finished_at"],
    }
    assert body["started_at"] and body["finished_at"]
    assert samples["mismatched"][0]["source"]["amount"] == "5.00"
    assert samples["mismatched"][0]["target"]["AMOUNT"] == "6.00"


def test_a_windowed_run_shows_its_window(api_as, engineer, failed_run):
    ReconciliationRun.objects.filter(pk=failed_run.pk).update(
        window_start="2024-05-01T00:00:00Z", window_end="2024-05-02T00:00:00Z"
    )
    window = api_as(engineer).get(f"{URL}{failed_run.pk}/").json()["window"]
    assert window == {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}


def test_list_filters_by_job_status_and_interface(
    api_as, engineer, engineer_b, team_b, interface_b, job, failed_run
):
    queued = services.start_run(engineer, job)
    theirs = services.save_data_source(engineer_b, file_source(team_b, "b", "a\n1\n"))
    other_job = services.save_job(
        engineer_b,
        ReconciliationJob(
            interface=interface_b, name="b", source=theirs, target=theirs, key_columns=["a"]
        ),
    )
    other = finish(services.start_run(engineer_b, other_job))
    client = api_as(engineer)

    def ids(query):
        response = client.get(URL + query)
        assert response.status_code == 200
        return [row["id"] for row in response.json()["results"]]

    assert ids("") == [other.pk, queued.pk, failed_run.pk]
    assert ids(f"?job={job.pk}") == [queued.pk, failed_run.pk]
    assert ids("?status=queued") == [queued.pk]
    assert ids("?status=failed&interface=int-042") == [failed_run.pk]
    assert ids("?interface=INT-043") == [other.pk]
    assert "samples" not in client.get(URL).json()["results"][0]
    assert client.get(URL + "?status=lost").status_code == 400


def test_the_list_takes_the_same_queries_however_many_runs(
    api_as, engineer, job, django_assert_num_queries
):
    client = api_as(engineer)
    finish(services.start_run(engineer, job))
    assert client.get(URL).status_code == 200  # the token's first use is recorded once
    # The token with its user; the count; the page (job, interface and requester joined).
    with django_assert_num_queries(3):
        assert len(client.get(URL).json()["results"]) == 1
    for _ in range(5):
        finish(services.start_run(engineer, job))
    with django_assert_num_queries(3):
        assert len(client.get(URL).json()["results"]) == 6


# --------------------------------------------------------------------------------------
# Waiting and cancelling
# --------------------------------------------------------------------------------------


def test_wait_answers_at_once_for_a_finished_run(api_as, engineer, failed_run, monkeypatch):
    monkeypatch.setattr(api, "pause", lambda seconds: pytest.fail("waited for a finished run"))
    response = api_as(engineer).get(f"{URL}{failed_run.pk}/wait/?timeout=30")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"


def test_wait_answers_when_the_run_finishes(api_as, engineer, job, monkeypatch):
    run = services.start_run(engineer, job)
    pauses = []

    def worker_finishes(seconds):
        # The run ends while the request waits (a worker elsewhere, here in between looks).
        pauses.append(seconds)
        if len(pauses) == 2:
            jobs.execute(ReconciliationRun, run.pk, run_job)

    monkeypatch.setattr(api, "pause", worker_finishes)
    response = api_as(engineer).get(f"{URL}{run.pk}/wait/?timeout=30")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert response.json()["matched"] == 2
    assert pauses == [api.WAIT_POLL_SECONDS, api.WAIT_POLL_SECONDS]


def test_wait_gives_the_progress_so_far_after_the_timeout(api_as, engineer, job, monkeypatch):
    run = services.start_run(engineer, job)
    monkeypatch.setattr(api, "pause", lambda seconds: None)
    client = api_as(engineer)
    response = client.get(f"{URL}{run.pk}/wait/?timeout=0")
    assert response.status_code == 200 and response.json()["status"] == "queued"
    response = client.get(f"{URL}{run.pk}/wait/?timeout=soon")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "timeout", "message": "Seconds, as a whole number.", "code": "invalid"}
    ]


def test_a_queued_run_is_cancelled(api_as, engineer, job):
    run = services.start_run(engineer, job)
    response = api_as(engineer).post(f"{URL}{run.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    # A finished run stays as it was.
    response = api_as(engineer).post(f"{URL}{run.pk}/cancel/")
    assert response.json()["status"] == "cancelled"


def test_a_running_run_is_asked_to_stop(api_as, engineer, job):
    run = services.start_run(engineer, job)
    jobs.claim(ReconciliationRun, run.pk)
    response = api_as(engineer).post(f"{URL}{run.pk}/cancel/")
    assert response.json()["status"] == "running"
    assert ReconciliationRun.objects.get(pk=run.pk).cancel_requested


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


def test_the_report_downloads_as_csv(api_as, engineer, failed_run):
    response = api_as(engineer).get(f"{URL}{failed_run.pk}/report/", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="INT-042-reconciliation-run-{failed_run.pk}.csv"'
    )
    content = b"".join(response.streaming_content)
    assert content == (settings.VAR_DIR / failed_run.report_file).read_bytes()
    lines = content.decode().splitlines()
    assert sorted(lines[1:]) == [
        "duplicate,5,,2 rows,1 rows",
        "mismatched,2,amount,5.00,6.00",
        "missing_in_target,4,,,",
        "unexpected_in_target,9,,,",
    ]


def test_a_run_without_a_report_is_404(api_as, engineer, engineer_b, team_a, job, failed_run):
    client = api_as(engineer)
    queued = services.start_run(engineer, job)
    response = client.get(f"{URL}{queued.pk}/report/", HTTP_ACCEPT="text/csv")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"

    # A run that ended before comparing (a column missing from the target file).
    job.target = services.save_data_source(
        engineer, file_source(team_a, "nokey", "AMOUNT,BOOKED,STATUS\n1,x,y\n")
    )
    services.save_job(engineer, job)
    finish(queued)
    broken = finish(services.start_run(engineer, job))
    assert broken.status == JobStatus.FAILED and not broken.report_file
    assert client.get(f"{URL}{broken.pk}/").json()["report_url"] is None
    assert client.get(f"{URL}{broken.pk}/report/").status_code == 404

    # A report file that is gone, or a path outside the reports directory.
    (settings.VAR_DIR / failed_run.report_file).unlink()
    assert client.get(f"{URL}{failed_run.pk}/report/").status_code == 404
    ReconciliationRun.objects.filter(pk=failed_run.pk).update(report_file="../pontis.sqlite3")
    assert client.get(f"{URL}{failed_run.pk}/report/").status_code == 404


# --------------------------------------------------------------------------------------
# Defects
# --------------------------------------------------------------------------------------


def test_a_defect_is_raised_from_a_run_below_its_target_once(api_as, engineer, failed_run):
    client = api_as(engineer)
    response = client.post(
        f"{URL}{failed_run.pk}/defect/",
        {"severity": "critical", "phase_found": "uat"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    defect = response.json()
    assert defect["interface"] == "INT-042"
    assert defect["severity"] == "critical" and defect["phase_found"] == "uat"
    assert defect["title"] == "INT-042 orders: accuracy 33.333% below 99.500%"
    assert (
        "Missing in target: 1; unexpected in target: 1; mismatched: 1 (amount 1)"
        in (defect["actual"])
    )
    assert defect["raised_by"] == "engineer"
    assert client.get(f"{URL}{failed_run.pk}/").json()["defect"] == defect["id"]

    again = client.post(f"{URL}{failed_run.pk}/defect/", {}, format="json")
    assert again.status_code == 400
    assert again.json()["detail"] == f"Defect #{defect['id']} was raised from this run already."
    assert Defect.objects.count() == 1


def test_a_defect_takes_defaults_and_refuses_bad_values(api_as, engineer, failed_run):
    client = api_as(engineer)
    response = client.post(f"{URL}{failed_run.pk}/defect/", {"severity": "dire"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "severity"
    assert not Defect.objects.exists()
    response = client.post(f"{URL}{failed_run.pk}/defect/", {}, format="json")
    assert response.status_code == 201
    assert (response.json()["severity"], response.json()["phase_found"]) == ("high", "sit")


def test_a_run_that_met_its_target_raises_no_defect(api_as, engineer, job):
    job.accuracy_target = Decimal("30")
    services.save_job(engineer, job)
    run = finish(services.start_run(engineer, job))
    assert run.status == JobStatus.SUCCEEDED
    response = api_as(engineer).post(f"{URL}{run.pk}/defect/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "Only a run below its accuracy target raises a defect."
    queued = services.start_run(engineer, job)
    assert api_as(engineer).post(f"{URL}{queued.pk}/defect/").status_code == 400
    assert not Defect.objects.exists()


# --------------------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_viewers_and_other_teams_read_runs_but_change_nothing(
    request, persona, api_as, engineer, job, failed_run
):
    queued = services.start_run(engineer, job)
    client = api_as(request.getfixturevalue(persona))
    for path in (URL, f"{URL}{failed_run.pk}/", f"{URL}{failed_run.pk}/wait/?timeout=0"):
        assert client.get(path).status_code == 200, path
    assert client.get(f"{URL}{failed_run.pk}/report/").status_code == 200
    refused = [
        client.post(f"{URL}{queued.pk}/cancel/"),
        client.post(f"{URL}{failed_run.pk}/defect/", {}, format="json"),
    ]
    assert [response.status_code for response in refused] == [403, 403]
    assert ReconciliationRun.objects.get(pk=queued.pk).status == JobStatus.QUEUED
    assert not Defect.objects.exists()
    assert not AuditEntry.objects.filter(content_type__model="defect").exists()


@pytest.mark.parametrize("persona", ["lead", "admin_user"])
def test_the_teams_lead_and_admins_cancel_runs_and_raise_defects(
    request, persona, api_as, engineer, job, failed_run
):
    client = api_as(request.getfixturevalue(persona))
    queued = services.start_run(engineer, job)
    assert client.post(f"{URL}{queued.pk}/cancel/").json()["status"] == "cancelled"
    assert client.post(f"{URL}{failed_run.pk}/defect/", {}, format="json").status_code == 201


def test_runs_cannot_be_created_changed_or_deleted_directly(api_as, admin_user, failed_run):
    client = api_as(admin_user)
    assert client.post(URL, {}, format="json").status_code == 405
    assert client.patch(f"{URL}{failed_run.pk}/", {}, format="json").status_code == 405
    assert client.delete(f"{URL}{failed_run.pk}/").status_code == 405
