"""REST API of reconciliation jobs: writes checked field by field, runs started (409 for a
second active one), the accuracy trend, the team policy."""

from decimal import Decimal

import pytest

from apps.core import jobs
from apps.core.models import AuditEntry
from apps.reconciliation import services
from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
from apps.reconciliation.runner import run_job
from tests.reconciliation.test_runs import SOURCE_CSV, TARGET_CSV, file_source

pytestmark = pytest.mark.django_db

URL = "/api/v1/reconciliation-jobs/"


@pytest.fixture
def sources(engineer, team_a, interface_a):
    return (
        services.save_data_source(engineer, file_source(team_a, "erp-orders", SOURCE_CSV)),
        services.save_data_source(engineer, file_source(team_a, "crm-orders", TARGET_CSV)),
    )


def job_body(sources, **changes) -> dict:
    body = {
        "interface": "INT-042",
        "name": "orders",
        "source": sources[0].pk,
        "target": sources[1].pk,
        "key_columns": ["order_id"],
        "compare_columns": ["amount", "booked_at", "status"],
        "column_mapping": {
            "order_id": "ID",
            "amount": "AMOUNT",
            "booked_at": "BOOKED",
            "status": "STATUS",
        },
        "normalisation": {
            "order_id": {"type": "integer"},
            "amount": {"type": "number", "tolerance": "0.001"},
            "booked_at": {"type": "datetime"},
        },
    }
    body.update(changes)
    return body


@pytest.fixture
def job(engineer, interface_a, sources):
    return services.save_job(
        engineer,
        ReconciliationJob(
            interface=interface_a,
            **{
                name: value
                for name, value in job_body(sources).items()
                if name not in ("interface", "source", "target")
            },
            source=sources[0],
            target=sources[1],
        ),
    )


def finish(run_id: int) -> ReconciliationRun:
    jobs.execute(ReconciliationRun, run_id, run_job)
    return ReconciliationRun.objects.get(pk=run_id)


# --------------------------------------------------------------------------------------
# Create, update, delete
# --------------------------------------------------------------------------------------


def test_a_job_is_created_and_read_back(api_as, engineer, sources):
    client = api_as(engineer)
    response = client.post(URL, job_body(sources, schedule_cron="0 2 * * *"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["interface"] == "INT-042"
    assert body["source"] == sources[0].pk and body["target"] == sources[1].pk
    assert body["normalisation"]["amount"] == {"type": "number", "tolerance": "0.001"}
    assert body["accuracy_target"] == 99.5
    assert body["strategy"] == "auto" and body["window"] == ""
    assert body["next_run_at"] is not None
    assert body["last_run"] is None
    assert client.get(f"{URL}{body['id']}/").json() == body
    history = client.get(f"{URL}{body['id']}/history/").json()
    assert [entry["action"] for entry in history] == ["create"]


def test_a_job_is_changed_and_its_schedule_cleared(api_as, engineer, job):
    client = api_as(engineer)
    response = client.patch(
        f"{URL}{job.pk}/",
        {"accuracy_target": 30, "description": "nightly", "schedule_cron": "0 2 * * *"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["accuracy_target"] == 30.0
    assert response.json()["next_run_at"] is not None
    response = client.patch(f"{URL}{job.pk}/", {"schedule_cron": ""}, format="json")
    assert response.json()["next_run_at"] is None
    job.refresh_from_db()
    assert job.accuracy_target == Decimal("30") and job.description == "nightly"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"normalisation": {"amount": {"type": "money"}}},
            "normalisation",
            "amount: type must be one of text, number, integer, date, datetime, boolean.",
        ),
        (
            {"normalisation": {"amount": {"type": "number", "round": 2}}},
            "normalisation",
            "amount: unknown option round.",
        ),
        (
            {"normalisation": {"status": {"tolerance": 1}}},
            "normalisation",
            "status: places and tolerance apply to numbers only.",
        ),
        ({"normalisation": ["amount"]}, "normalisation", None),
        ({"key_columns": []}, "key_columns", "Name at least one key column."),
        ({"key_columns": "order_id"}, "key_columns", None),
        (
            {"source_dataset": "orders"},
            "source_dataset",
            "A file source reads the whole file; leave the dataset empty.",
        ),
        (
            {"target_options": {"sheet": "2"}},
            "target_options",
            "Unknown option sheet; the option is delimiter.",
        ),
        (
            {"source_options": {"delimiter": "x"}},
            "source_options",
            "Delimiter must be one of: comma (,), semicolon (;), tab, pipe (|).",
        ),
        ({"source_options": "delimiter=;"}, "source_options", None),
        (
            {"window": "yesterday"},
            "window_source_column",
            "A window needs the source timestamp column.",
        ),
        ({"window": "last_year"}, "window", None),
        ({"schedule_cron": "every day"}, "schedule_cron", None),
        ({"strategy": "in_database"}, "strategy", None),
        ({"accuracy_target": 101}, "accuracy_target", None),
        ({"source": 999999}, "source", None),
        ({"interface": "INT-999"}, "interface", None),
        ({"column_mapping": {"amount": ["AMOUNT"]}}, "column_mapping.amount", None),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_saved(
    api_as, engineer, sources, changes, field, message
):
    response = api_as(engineer).post(URL, job_body(sources, **changes), format="json")
    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == "application/problem+json"
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert field in errors, errors
    if message:
        assert errors[field] == message
    assert not ReconciliationJob.objects.exists()
    assert not AuditEntry.objects.filter(content_type__model="reconciliationjob").exists()


def test_a_source_of_another_team_is_refused(api_as, engineer, engineer_b, team_b, sources):
    foreign = services.save_data_source(engineer_b, file_source(team_b, "theirs", "a\n1\n"))
    response = api_as(engineer).post(URL, job_body(sources, target=foreign.pk), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "target",
            "message": "The data source must belong to the interface's team.",
            "code": "invalid",
        }
    ]


def test_a_refused_change_leaves_the_job_as_it_was(api_as, engineer, job):
    response = api_as(engineer).patch(
        f"{URL}{job.pk}/",
        {"name": "renamed", "normalisation": {"amount": {"type": "money"}}},
        format="json",
    )
    assert response.status_code == 400
    job.refresh_from_db()
    assert job.name == "orders"
    assert AuditEntry.objects.filter(content_type__model="reconciliationjob").count() == 1


def test_a_second_job_of_the_same_name_is_refused(api_as, engineer, sources, job):
    response = api_as(engineer).post(URL, job_body(sources), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "name",
            "message": "INT-042 already has a reconciliation job named orders.",
            "code": "invalid",
        }
    ]


def test_a_job_is_deleted_but_not_while_a_run_is_active(api_as, engineer, job):
    client = api_as(engineer)
    run = services.start_run(engineer, job)
    response = client.delete(f"{URL}{job.pk}/")
    assert response.status_code == 400
    assert response.json()["detail"] == "A run of this job is still active; cancel it first."
    finish(run.pk)
    assert client.delete(f"{URL}{job.pk}/").status_code == 204
    assert not ReconciliationJob.objects.exists() and not ReconciliationRun.objects.exists()


def test_list_filters_by_interface_and_text(
    api_as, engineer, engineer_b, team_b, interface_b, sources, job
):
    theirs = services.save_data_source(engineer_b, file_source(team_b, "b", "a\n1\n"))
    services.save_job(
        engineer_b,
        ReconciliationJob(
            interface=interface_b,
            name="invoices",
            description="monthly close",
            source=theirs,
            target=theirs,
            key_columns=["a"],
        ),
    )
    client = api_as(engineer)

    def names(query):
        response = client.get(URL + query)
        assert response.status_code == 200
        return [row["name"] for row in response.json()["results"]]

    assert names("") == ["orders", "invoices"]
    assert names("?interface=int-043") == ["invoices"]
    assert names("?q=close") == ["invoices"]
    assert names("?q=ORD") == ["orders"]


def test_the_list_shows_each_jobs_last_run_in_the_same_queries_however_many(
    api_as, engineer, interface_a, sources, job, django_assert_num_queries
):
    client = api_as(engineer)
    assert client.get(URL).status_code == 200  # the token's first use is recorded once
    # The token with its user; the count; the page (interface joined, last run in subqueries).
    with django_assert_num_queries(3):
        client.get(URL)
    for number in range(5):
        other = services.save_job(
            engineer,
            ReconciliationJob(
                interface=interface_a,
                name=f"orders {number}",
                source=sources[0],
                target=sources[1],
                key_columns=["order_id"],
                column_mapping={"order_id": "ID"},
            ),
        )
        finish(services.start_run(engineer, other).pk)
    with django_assert_num_queries(3):
        rows = client.get(URL).json()["results"]
    assert len(rows) == 6
    last = rows[1]["last_run"]
    assert last["status"] == "failed" and last["accuracy"] == 50.0
    assert last["finished_at"] is not None
    assert rows[0]["last_run"] is None


# --------------------------------------------------------------------------------------
# Runs and the trend
# --------------------------------------------------------------------------------------


def test_run_queues_a_run_and_a_second_is_409_naming_the_first(api_as, engineer, job):
    client = api_as(engineer)
    response = client.post(f"{URL}{job.pk}/run/")
    assert response.status_code == 201, response.json()
    run = response.json()
    assert run["status"] == "queued" and run["job"] == job.pk
    assert run["interface"] == "INT-042" and run["requested_by"] == "engineer"
    assert run["accuracy_target"] == 99.5 and run["report_url"] is None

    again = client.post(f"{URL}{job.pk}/run/")
    assert again.status_code == 409
    assert again["Content-Type"] == "application/problem+json"
    body = again.json()
    assert body["run"] == run["id"]
    assert body["detail"] == f"Run #{run['id']} of INT-042 orders is still queued."
    assert again["Location"].endswith(f"/api/v1/reconciliation-runs/{run['id']}/")
    assert ReconciliationRun.objects.count() == 1

    finish(run["id"])
    assert client.post(f"{URL}{job.pk}/run/").status_code == 201


def test_the_trend_shows_the_last_finished_runs_oldest_first(api_as, engineer, job):
    finished = []
    for target in ("30", "99.5", "20"):
        job.accuracy_target = Decimal(target)
        services.save_job(engineer, job)
        finished.append(finish(services.start_run(engineer, job).pk))
    cancelled = services.start_run(engineer, job)
    services.cancel_run(engineer, cancelled)
    services.start_run(engineer, job)  # queued: not in the trend

    client = api_as(engineer)
    points = client.get(f"{URL}{job.pk}/trend/").json()
    assert [point["run"] for point in points] == [run.pk for run in finished]
    assert points[0] == {
        "run": finished[0].pk,
        "status": "succeeded",
        "scheduled": False,
        "accuracy": 33.333,
        "accuracy_target": 30.0,
        "met_target": True,
        "source_rows": 6,
        "target_rows": 5,
        "matched": 2,
        "mismatched": 1,
        "missing_in_target": 1,
        "unexpected_in_target": 1,
        "duplicates": 1,
        "created_at": points[0]["created_at"],
        "started_at": points[0]["started_at"],
        "finished_at": points[0]["finished_at"],
    }
    assert points[0]["finished_at"] is not None
    assert [point["status"] for point in points] == ["succeeded", "failed", "succeeded"]
    limited = client.get(f"{URL}{job.pk}/trend/?limit=2").json()
    assert [point["run"] for point in limited] == [run.pk for run in finished[1:]]
    response = client.get(f"{URL}{job.pk}/trend/?limit=0")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "limit"


def test_the_trend_takes_the_same_queries_however_many_runs(
    api_as, engineer, job, django_assert_num_queries
):
    client = api_as(engineer)
    url = f"{URL}{job.pk}/trend/"
    assert client.get(url).status_code == 200  # the token's first use is recorded once
    # The token with its user; the job (with its last run); the runs.
    with django_assert_num_queries(3):
        assert client.get(url).json() == []
    for _ in range(6):
        finish(services.start_run(engineer, job).pk)
    with django_assert_num_queries(3):
        assert len(client.get(url).json()) == 6


# --------------------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_viewers_and_other_teams_read_jobs_but_change_nothing(
    request, persona, api_as, sources, job
):
    client = api_as(request.getfixturevalue(persona))
    url = f"{URL}{job.pk}/"
    for path in (URL, url, f"{url}history/", f"{url}trend/"):
        assert client.get(path).status_code == 200, path
    refused = [
        client.post(URL, job_body(sources, name="new"), format="json"),
        client.patch(url, {"name": "hijacked"}, format="json"),
        client.put(url, job_body(sources, name="hijacked"), format="json"),
        client.delete(url),
        client.post(f"{url}run/"),
    ]
    assert [response.status_code for response in refused] == [403] * 5
    job.refresh_from_db()
    assert job.name == "orders"
    assert ReconciliationJob.objects.count() == 1 and not ReconciliationRun.objects.exists()


def test_an_engineer_cannot_move_a_job_to_another_teams_interface(
    api_as, engineer, job, interface_b
):
    response = api_as(engineer).patch(f"{URL}{job.pk}/", {"interface": "INT-043"}, format="json")
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.interface.code == "INT-042"


@pytest.mark.parametrize("persona", ["engineer", "lead", "admin_user"])
def test_the_team_and_admins_write_jobs_and_run_them(request, persona, api_as, sources):
    client = api_as(request.getfixturevalue(persona))
    response = client.post(URL, job_body(sources), format="json")
    assert response.status_code == 201, response.json()
    url = f"{URL}{response.json()['id']}/"
    assert client.patch(url, {"description": "x"}, format="json").status_code == 200
    run = client.post(f"{url}run/")
    assert run.status_code == 201
    finish(run.json()["id"])
    assert client.delete(url).status_code == 204
