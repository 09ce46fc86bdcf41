"""Reconciliation job pages: the interface's panel and job list, create and edit with errors
by field, the schedule preview, the job page with its runs and accuracy trend, Run now
(409 while a run is active) and delete, with the permission policy."""

import re
from decimal import Decimal

import pytest

from apps.core.models import AuditEntry, JobStatus
from apps.mappings.models import FieldRule, MappingSpec, SpecStatus
from apps.reconciliation import services
from apps.reconciliation.models import DataSource, ReconciliationJob, ReconciliationRun
from tests.reconciliation.test_runs import SOURCE_CSV, TARGET_CSV, file_source, run_now

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _own_media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


@pytest.fixture
def erp(engineer, team_a, interface_a):
    return services.save_data_source(engineer, file_source(team_a, "erp-orders", SOURCE_CSV))


@pytest.fixture
def crm(engineer, team_a):
    return services.save_data_source(engineer, file_source(team_a, "crm-orders", TARGET_CSV))


def job_form(erp, crm, **changes) -> dict:
    form = {
        "name": "orders",
        "description": "Orders from ERP to CRM",
        "source": erp.pk,
        "source_dataset": "",
        "source_options": "",
        "target": crm.pk,
        "target_dataset": "",
        "target_options": "",
        "key_columns": "order_id",
        "compare_columns": "amount, booked_at, status",
        "column_mapping": "order_id = ID\namount = AMOUNT\nbooked_at = BOOKED\nstatus = STATUS",
        "mapping_spec": "",
        "normalisation": '{"order_id": {"type": "integer"}, "amount": {"type": "number"}, '
        '"booked_at": {"type": "datetime"}}',
        "window": "",
        "window_source_column": "",
        "window_target_column": "",
        "strategy": "auto",
        "schedule_cron": "",
        "accuracy_target": "99.5",
    }
    form.update(changes)
    return form


@pytest.fixture
def job(client, engineer, erp, crm):
    client.force_login(engineer)
    response = client.post("/interfaces/INT-042/reconciliation/new/", job_form(erp, crm))
    assert response.status_code == 302, response.context["form"].errors
    client.logout()
    return ReconciliationJob.objects.get()


# ---------------------------------------------------------------- interface page and list


def test_the_interface_page_has_a_reconciliation_panel(client, engineer, viewer, interface_a):
    client.force_login(engineer)
    html = page(client, "/interfaces/INT-042/")
    assert '<div class="panel" id="reconciliation">' in html
    assert "No reconciliation job yet" in html
    assert 'href="/interfaces/INT-042/reconciliation/new/"' in html
    client.force_login(viewer)
    html = page(client, "/interfaces/INT-042/")
    assert 'href="/interfaces/INT-042/reconciliation/"' in html
    assert "/reconciliation/new/" not in html


def test_the_panel_lists_jobs_with_their_latest_accuracy(client, engineer, viewer, job):
    run = run_now(engineer, job)
    client.force_login(viewer)
    html = page(client, "/interfaces/INT-042/")
    panel = html[html.index('id="reconciliation"') :]
    assert f'href="/reconciliation-jobs/{job.pk}/">orders</a>' in panel
    assert f'href="/reconciliation-runs/{run.pk}/">33.333%</a>' in panel
    assert '<span class="badge job-failed">below 99.5%</span>' in panel


def test_the_job_list_shows_last_run_and_accuracy(client, engineer, viewer, job):
    run = run_now(engineer, job)
    services.start_run(engineer, job)  # a newer run, still queued
    client.force_login(viewer)
    html = page(client, "/interfaces/INT-042/reconciliation/")
    assert f'href="/reconciliation-jobs/{job.pk}/"><strong>orders</strong>' in html
    assert '<span class="badge job-queued">queued</span>' in html
    assert f'href="/reconciliation-runs/{run.pk}/" class="accuracy missed">33.333%</a>' in html
    assert "New job" not in html


def test_the_empty_job_list_explains_a_job(client, engineer, viewer, interface_a):
    client.force_login(engineer)
    html = page(client, "/interfaces/INT-042/reconciliation/")
    assert "INT-042 has no reconciliation job yet." in html
    assert html.count('href="/interfaces/INT-042/reconciliation/new/"') == 2
    client.force_login(viewer)
    html = page(client, "/interfaces/INT-042/reconciliation/")
    assert "The owner team (Team A) sets up its reconciliations." in html


# ---------------------------------------------------------------- create and edit


def test_an_engineer_creates_a_job(client, engineer, erp, crm):
    client.force_login(engineer)
    response = client.post(
        "/interfaces/INT-042/reconciliation/new/",
        job_form(erp, crm, schedule_cron="0 2 * * *", accuracy_target="98"),
    )
    job = ReconciliationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reconciliation-jobs/{job.pk}/"
    assert job.key_columns == ["order_id"]
    assert job.compare_columns == ["amount", "booked_at", "status"]
    assert job.column_mapping == {
        "order_id": "ID",
        "amount": "AMOUNT",
        "booked_at": "BOOKED",
        "status": "STATUS",
    }
    assert job.normalisation["amount"] == {"type": "number"}
    assert job.source_options == {} and job.target_options == {}
    assert job.accuracy_target == Decimal("98") and job.next_run_at is not None
    assert AuditEntry.objects.filter(object_repr="INT-042 orders", action="create").exists()


def test_the_new_job_form_offers_the_teams_sources_and_approved_specs(
    client, engineer, engineer_b, team_b, interface_a, erp, crm
):
    other = DataSource.objects.create(owner_team=team_b, name="b-only", kind="sqlite")
    approved = MappingSpec.objects.create(
        interface=interface_a, name="Orders to CRM", status=SpecStatus.APPROVED
    )
    MappingSpec.objects.create(interface=interface_a, name="Draft", status=SpecStatus.DRAFT)
    client.force_login(engineer)
    html = page(client, "/interfaces/INT-042/reconciliation/new/")
    assert "erp-orders" in html and "crm-orders" in html and "b-only" not in html
    assert f'<option value="{approved.pk}">INT-042 Orders to CRM v1</option>' in html
    assert "Draft" not in html
    assert 'value="99.5"' in html  # the default accuracy target
    assert "Normalisation options" in html and "keep_trailing_whitespace" in html
    response = client.post(
        "/interfaces/INT-042/reconciliation/new/", job_form(erp, crm, source=other.pk)
    )
    assert "source" in response.context["form"].errors
    assert not ReconciliationJob.objects.exists()


def test_bad_input_gets_errors_by_field_and_saves_nothing(client, engineer, erp, crm):
    client.force_login(engineer)
    cases = {
        "key_columns": ({"key_columns": " , "}, "Name at least one key column."),
        "compare_columns": (
            {"compare_columns": "amount, amount"},
            "amount is named twice in the compared columns.",
        ),
        "column_mapping": (
            {"column_mapping": "order_id = ID\namount AMOUNT"},
            "Line 2: write source column = target column.",
        ),
        "normalisation": (
            {"normalisation": '{"amount": {"type": "money"}}'},
            "amount: type must be one of text, number, integer, date, datetime, boolean.",
        ),
        "source_options": ({"source_options": "[1, 2]"}, "Write a JSON object: {…}."),
        "target_options": ({"target_options": '{"delimiter": "x"}'}, None),
        "source_dataset": (
            {"source_dataset": "orders"},
            "A file source reads the whole file; leave the dataset empty.",
        ),
        "schedule_cron": ({"schedule_cron": "every day"}, None),
        "window_source_column": ({"window": "yesterday"}, None),
        "accuracy_target": ({"accuracy_target": "101"}, None),
        "name": ({"name": ""}, None),
    }
    for field, (changes, message) in cases.items():
        response = client.post(
            "/interfaces/INT-042/reconciliation/new/", job_form(erp, crm, **changes)
        )
        assert response.status_code == 200, field
        errors = response.context["form"].errors
        assert field in errors, (field, errors)
        if message:
            assert message in errors[field], (field, errors[field])
        html = response.content.decode()
        assert f'id="errors-{field}"' in html
    assert not ReconciliationJob.objects.exists()
    assert not AuditEntry.objects.filter(action="create", object_repr__startswith="INT").exists()


def test_a_duplicate_job_name_is_refused_on_the_name(client, engineer, job, erp, crm):
    client.force_login(engineer)
    response = client.post("/interfaces/INT-042/reconciliation/new/", job_form(erp, crm))
    assert response.context["form"].errors["name"] == ["INT-042 has a job named orders already."]
    assert ReconciliationJob.objects.count() == 1


def test_the_edit_form_shows_the_settings_as_typed(client, engineer, job):
    client.force_login(engineer)
    html = page(client, f"/reconciliation-jobs/{job.pk}/edit/")
    assert 'value="order_id"' in html
    assert 'value="amount, booked_at, status"' in html
    assert "order_id = ID\namount = AMOUNT" in html
    assert "\\&quot;" not in html  # JSON, not JSON text inside JSON
    assert "{\n  &quot;order_id&quot;: {\n    &quot;type&quot;: &quot;integer&quot;\n  }," in html


def test_editing_a_job_changes_it(client, engineer, job, erp, crm):
    client.force_login(engineer)
    response = client.post(
        f"/reconciliation-jobs/{job.pk}/edit/",
        job_form(
            erp,
            crm,
            compare_columns="amount",
            normalisation='{"amount": {"type": "number", "places": 2}}',
            accuracy_target="50",
        ),
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.compare_columns == ["amount"] and job.accuracy_target == Decimal("50")
    assert job.normalisation == {"amount": {"type": "number", "places": 2}}
    assert AuditEntry.objects.filter(action="update", object_repr="INT-042 orders").exists()


def test_the_mapping_can_come_from_an_approved_spec(client, engineer, interface_a, erp, crm):
    spec = MappingSpec.objects.create(interface=interface_a, name="Orders", status="approved")
    for position, (target, source) in enumerate(
        [("ID", "order_id"), ("AMOUNT", "amount"), ("STATUS", "status")], start=1
    ):
        FieldRule.objects.create(
            spec=spec, position=position, target_path=target, source_paths=[source]
        )
    client.force_login(engineer)
    response = client.post(
        "/interfaces/INT-042/reconciliation/new/",
        job_form(erp, crm, column_mapping="booked_at = BOOKED", mapping_spec=spec.pk),
    )
    assert response.status_code == 302
    job = ReconciliationJob.objects.get()
    html = page(client, f"/reconciliation-jobs/{job.pk}/")
    assert '<code>AMOUNT</code> <span class="muted small">from the mapping spec</span>' in html
    run = run_now(engineer, job)
    assert (run.matched, run.mismatched) == (2, 1)


def test_a_draft_spec_cannot_supply_the_mapping(client, engineer, interface_a, erp, crm):
    spec = MappingSpec.objects.create(interface=interface_a, name="Draft", status="draft")
    client.force_login(engineer)
    response = client.post(
        "/interfaces/INT-042/reconciliation/new/", job_form(erp, crm, mapping_spec=spec.pk)
    )
    assert "mapping_spec" in response.context["form"].errors
    assert not ReconciliationJob.objects.exists()


def test_the_schedule_field_previews_the_next_runs_as_typed(client, engineer, erp, crm):
    client.force_login(engineer)
    headers = dict(HTMX, HTTP_HX_TRIGGER_NAME="schedule_cron")
    response = client.post(
        "/interfaces/INT-042/reconciliation/new/",
        job_form(erp, crm, schedule_cron="30 2 * * *", _validate="1"),
        **headers,
    )
    html = response.content.decode()
    assert "Next runs:" in html and "02:30" in html and "UTC" in html
    assert len(re.findall(r"\d{4}-\d{2}-\d{2} 02:30", html)) == 3
    response = client.post(
        "/interfaces/INT-042/reconciliation/new/",
        job_form(erp, crm, schedule_cron="every day", _validate="1"),
        **headers,
    )
    assert '<ul class="errorlist">' in response.content.decode()
    assert not ReconciliationJob.objects.exists()


def test_other_fields_are_checked_as_typed(client, engineer, erp, crm):
    client.force_login(engineer)
    response = client.post(
        "/interfaces/INT-042/reconciliation/new/",
        job_form(erp, crm, key_columns="", _validate="1"),
        **dict(HTMX, HTTP_HX_TRIGGER_NAME="key_columns"),
    )
    assert "This field is required." in response.content.decode()


# ---------------------------------------------------------------- job page


def test_the_job_page_summarises_settings_and_runs(client, engineer, viewer, job):
    run = run_now(engineer, job)
    client.force_login(viewer)
    html = page(client, f"/reconciliation-jobs/{job.pk}/")
    assert '<code>order_id</code> <span class="badge key">key</span>' in html
    assert "<code>AMOUNT</code>" in html and "number" in html and "datetime" in html
    assert "99.5%</strong> of source rows must match" in html
    assert f'href="/reconciliation-runs/{run.pk}/">#{run.pk}</a>' in html
    assert '<span class="accuracy missed">33.333%</span>' in html
    assert 'class="trend-chart"' in html and html.count("<circle") == 1
    assert "target 99.5%" in html
    assert "Run now" not in html and "/edit/" not in html


def test_the_job_page_shows_the_next_scheduled_runs(client, engineer, job, erp, crm):
    client.force_login(engineer)
    client.post(
        f"/reconciliation-jobs/{job.pk}/edit/", job_form(erp, crm, schedule_cron="0 6 * * 1")
    )
    html = page(client, f"/reconciliation-jobs/{job.pk}/")
    assert "<code>0 6 * * 1</code>" in html
    assert len(re.findall(r"Mon \d{4}-\d{2}-\d{2} 06:00", html)) == 3


def test_the_job_page_has_constant_queries(client, engineer, job, django_assert_num_queries):
    client.force_login(engineer)

    def add_runs(count):
        for index in range(count):
            ReconciliationRun.objects.create(
                job=job,
                status=JobStatus.SUCCEEDED if index % 2 else JobStatus.FAILED,
                accuracy=Decimal("99.9") - index,
                met_target=bool(index % 2),
                source_rows=100,
                matched=99,
            )

    add_runs(2)
    # session + user + job (with interface, team, sources, spec) + runs + trend + the
    # user's teams (for the edit controls) + history
    with django_assert_num_queries(7):
        assert client.get(f"/reconciliation-jobs/{job.pk}/").status_code == 200
    add_runs(40)
    with django_assert_num_queries(7):
        html = client.get(f"/reconciliation-jobs/{job.pk}/").content.decode()
    assert html.count("<circle") == 30  # the last 30 finished runs


def test_a_job_of_another_team_is_readable_but_not_changeable(client, engineer_b, job, erp, crm):
    client.force_login(engineer_b)
    html = page(client, f"/reconciliation-jobs/{job.pk}/")
    assert "Run now" not in html and "Delete" not in html
    for url in (
        f"/reconciliation-jobs/{job.pk}/edit/",
        f"/reconciliation-jobs/{job.pk}/delete/",
        "/interfaces/INT-042/reconciliation/new/",
    ):
        assert client.get(url).status_code == 403, url
        assert client.post(url, job_form(erp, crm, name="hijacked")).status_code == 403, url
    assert client.post(f"/reconciliation-jobs/{job.pk}/run/").status_code == 403
    job.refresh_from_db()
    assert job.name == "orders" and not ReconciliationRun.objects.exists()


def test_a_viewer_cannot_create_change_or_run_jobs(client, viewer, job, erp, crm):
    client.force_login(viewer)
    assert client.get("/interfaces/INT-042/reconciliation/new/").status_code == 403
    assert (
        client.post(
            "/interfaces/INT-042/reconciliation/new/", job_form(erp, crm, name="x")
        ).status_code
        == 403
    )
    assert client.post(f"/reconciliation-jobs/{job.pk}/run/").status_code == 403
    assert client.post(f"/reconciliation-jobs/{job.pk}/delete/").status_code == 403
    assert ReconciliationJob.objects.count() == 1 and not ReconciliationRun.objects.exists()


# ---------------------------------------------------------------- run now and delete


def test_run_now_starts_a_run_and_a_second_answers_409(client, engineer, job):
    client.force_login(engineer)
    response = client.post(f"/reconciliation-jobs/{job.pk}/run/")
    run = ReconciliationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reconciliation-runs/{run.pk}/"
    assert run.requested_by == engineer and run.status == JobStatus.QUEUED
    html = page(client, f"/reconciliation-jobs/{job.pk}/")
    assert f"Run #{run.pk} is queued…" in html and ">Run now</button>" not in html

    response = client.post(f"/reconciliation-jobs/{job.pk}/run/")
    assert response.status_code == 409
    html = response.content.decode()
    assert "A run is active" in html
    assert f'href="/reconciliation-runs/{run.pk}/">Follow run #{run.pk}</a>' in html
    assert ReconciliationRun.objects.count() == 1


def test_run_now_only_posts(client, engineer, job):
    client.force_login(engineer)
    assert client.get(f"/reconciliation-jobs/{job.pk}/run/").status_code == 405


def test_deleting_a_job_asks_then_removes_it_with_its_runs(client, engineer, job):
    run_now(engineer, job)
    client.force_login(engineer)
    html = page(client, f"/reconciliation-jobs/{job.pk}/delete/")
    assert "Delete reconciliation job orders?" in html and "with its 1 run " in html
    response = client.post(f"/reconciliation-jobs/{job.pk}/delete/")
    assert response.status_code == 302
    assert response["Location"] == "/interfaces/INT-042/reconciliation/"
    assert not ReconciliationJob.objects.exists() and not ReconciliationRun.objects.exists()
    assert AuditEntry.objects.filter(action="delete", object_repr="INT-042 orders").exists()


def test_a_job_with_an_active_run_is_not_deleted(client, engineer, job):
    services.start_run(engineer, job)
    client.force_login(engineer)
    response = client.post(f"/reconciliation-jobs/{job.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == f"/reconciliation-jobs/{job.pk}/"
    assert messages_of(response) == ["A run of this job is still active; cancel it first."]
    assert ReconciliationJob.objects.exists()


# ---------------------------------------------------------------- the trend's geometry


def test_the_trend_axis_starts_at_a_round_floor_below_the_values():
    from apps.reconciliation.trend import floor_for

    assert floor_for([Decimal("99.8"), Decimal("99.6"), Decimal("99.5")]) == Decimal(99)
    assert floor_for([Decimal("99.95"), Decimal("99.99")]) == Decimal("99.9")
    assert floor_for([Decimal("100")]) == Decimal("99.9")
    assert floor_for([Decimal("33.333"), Decimal("99.5")]) == Decimal(0)
    assert floor_for([]) == Decimal("99.9")


def test_the_trend_places_runs_oldest_first_with_the_target_line():
    from apps.reconciliation.trend import BOTTOM, HEIGHT, TOP, AccuracyPoint, chart_of

    points = [
        AccuracyPoint(1, None, "succeeded", Decimal("100"), Decimal("99.5"), True),
        AccuracyPoint(2, None, "failed", Decimal("99"), Decimal("99.5"), False),
        AccuracyPoint(3, None, "failed", None, Decimal("99.5"), None),
    ]
    chart = chart_of(points, Decimal("99.5"))
    assert chart.floor == Decimal(98)
    assert [p.tone for p in chart.points] == ["ok", "bad", "none"]
    assert chart.points[0].y == TOP and chart.points[2].y == HEIGHT - BOTTOM
    assert chart.points[0].x < chart.points[1].x < chart.points[2].x
    assert chart.target_text == "99.5%" and TOP < chart.target_y < chart.points[1].y
    assert chart.line.count(",") == 2  # the hollow run is not on the line
    assert [label for _, label in chart.y_ticks] == ["98%", "98.5%", "99%", "99.5%", "100%"]


def test_the_job_form_says_when_the_team_has_no_data_sources(client, engineer, interface_a):
    client.force_login(engineer)
    html = page(client, "/interfaces/INT-042/reconciliation/new/")
    assert "Team A has no data sources yet. Add the source and the target first:" in html
    assert 'href="/data-sources/new/"' in html
