"""Reconciliation run pages: live progress with htmx polling and cancel, then the figures,
the per-column mismatches, the samples with both sides side by side, the difference report
and Raise defect, with the permission policy."""

import csv
import io
from decimal import Decimal

import pytest

from apps.core import jobs
from apps.core.models import JobStatus
from apps.reconciliation import services
from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
from apps.reconciliation.runner import run_job
from apps.testing.models import Defect
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


def squeeze(html: str) -> str:
    return " ".join(html.split())


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


@pytest.fixture
def failed_run(engineer, job):
    return run_now(engineer, job)


# ---------------------------------------------------------------- the figures


def test_a_finished_run_shows_every_figure(client, viewer, failed_run):
    client.force_login(viewer)
    html = squeeze(page(client, f"/reconciliation-runs/{failed_run.pk}/"))
    assert "Reconciliation run #" in html
    assert '<span class="value">33.333%</span>' in html
    assert "accuracy: 2 of 6 source rows matched" in html
    assert "against the target of <strong>99.5%</strong>" in html
    assert '<span class="badge job-failed verdict-badge">Fail: below target</span>' in html
    for value, label in [
        (6, "Source rows read"),
        (5, "Target rows read"),
        (2, "Matched"),
    ]:
        assert f'<div class="value">{value}</div><div class="label">{label}</div>' in html
    for anchor, value, label in [
        ("missing_in_target", 1, "Missing in target"),
        ("unexpected_in_target", 1, "Unexpected in target"),
        ("mismatched", 1, "Mismatched"),
        ("duplicate", 1, "Duplicate keys on both sides"),
    ]:
        assert (
            f'<a href="#samples-{anchor}">{value}</a></div><div class="label">{label}</div>' in html
        )
    # Duplicates: keys and rows per side.
    assert '<td>Source</td><td class="num">1</td><td class="num">2</td>' in html
    assert '<td>Target</td><td class="num">0</td><td class="num">0</td>' in html
    # Mismatches per column, most first, with the target column's name.
    assert (
        '<tr class="has-mismatches"><td><code>amount</code> → <code>AMOUNT</code></td>'
        '<td class="num">1</td><td class="num">33.33%</td></tr>' in html
    )
    assert html.index("<code>amount</code> → <code>AMOUNT</code></td>") < html.index(
        "<code>booked_at</code> → <code>BOOKED</code></td>"
    )
    assert f'href="/reconciliation-runs/{failed_run.pk}/report.csv"' in html
    assert "/progress/" not in html  # finished: no polling


def test_the_samples_show_both_sides_side_by_side(client, viewer, failed_run):
    client.force_login(viewer)
    html = squeeze(page(client, f"/reconciliation-runs/{failed_run.pk}/"))
    mismatched = html[html.index('id="samples-mismatched"') : html.index('id="samples-missing')]
    # The differing column is highlighted, with each side's own value.
    assert (
        '<tr class="differs"> <td class="col"><code>amount</code> → <code>AMOUNT</code> '
        '<span class="badge job-failed">differs</span></td> '
        '<td class="val ">5.00</td> <td class="val ">6.00</td> </tr>' in mismatched
    )
    # Equal columns show both sides too, not highlighted.
    assert (
        '<tr class=""> <td class="col"><code>status</code> → <code>STATUS</code></td> '
        '<td class="val ">open</td> <td class="val ">open</td> </tr>' in mismatched
    )
    assert '<th scope="rowgroup" rowspan="4" class="sample-key"><code>2</code>' in mismatched
    missing = html[html.index('id="samples-missing') : html.index('id="samples-unexpected')]
    assert "<code>4</code>" in missing
    assert '<td class="val ">1.00</td> <td class="val absent">—</td>' in missing
    unexpected = html[html.index('id="samples-unexpected') : html.index('id="samples-duplicate')]
    assert '<td class="val absent">—</td> <td class="val ">9</td>' in unexpected
    duplicate = html[html.index('id="samples-duplicate') :]
    assert "2 source rows, 1 target row" in duplicate


def test_values_with_spaces_empty_and_null_are_visible():
    from apps.reconciliation.run_views import shown

    assert shown("paid ").text == '"paid "'
    assert (shown("").text, shown("").css) == ("(empty)", "null")
    assert (shown(None).text, shown(None).css) == ("NULL", "null")
    assert shown(True).text == "true" and shown(10).text == "10"


def test_a_sample_shows_columns_the_job_no_longer_names():
    from apps.reconciliation.run_views import sample_record

    record = sample_record(
        {
            "key": [1],
            "source": {"id": 1, "old": "x"},
            "target": {"ID": 1, "gone": "y"},
            "columns": ["old"],
        },
        [("id", "ID")],
        1,
    )
    assert [
        (c.source_column, c.target_column, c.source.text, c.target.text) for c in record.cells
    ] == [
        ("id", "ID", "1", "1"),
        ("old", "", "x", "—"),
        ("", "gone", "—", "y"),
    ]
    assert [c.differs for c in record.cells] == [False, True, False]


def test_a_run_that_met_its_target_passes(client, engineer, job):
    job.accuracy_target = Decimal("30")
    services.save_job(engineer, job)
    run = run_now(engineer, job)
    client.force_login(engineer)
    html = page(client, f"/reconciliation-runs/{run.pk}/")
    assert '<span class="badge job-succeeded verdict-badge">Pass: target met</span>' in html
    assert "Raise defect" not in html


def test_a_run_that_failed_before_comparing_says_why(client, engineer, team_a, job):
    job.target = services.save_data_source(
        engineer, file_source(team_a, "broken", "ID;AMOUNT;BOOKED;STATUS\n1;ten;x;open\n")
    )
    services.save_job(engineer, job)
    run = run_now(engineer, job)
    client.force_login(engineer)
    html = page(client, f"/reconciliation-runs/{run.pk}/")
    assert "Failed before comparing" in html
    assert "target column AMOUNT: &#x27;ten&#x27; is not a number." in html
    assert "report.csv" not in html and "Raise defect" not in html and "samples-" not in html


# ---------------------------------------------------------------- live progress


def test_an_active_run_polls_its_progress_and_can_be_cancelled(client, engineer, job):
    run = services.start_run(engineer, job)
    jobs.claim(ReconciliationRun, run.pk)
    ReconciliationRun.objects.filter(pk=run.pk).update(
        source_rows=12000, target_rows=3400, progress_note="Reading the target: 15,400 rows"
    )
    client.force_login(engineer)
    html = squeeze(page(client, f"/reconciliation-runs/{run.pk}/"))
    assert f'hx-get="/reconciliation-runs/{run.pk}/progress/" hx-trigger="every 1s"' in html
    assert '<span class="value">12,000</span><span class="label">source rows read</span>' in html
    assert '<span class="value">3,400</span><span class="label">target rows read</span>' in html
    assert "Reading the target: 15,400 rows" in html
    assert f'action="/reconciliation-runs/{run.pk}/cancel/"' in html

    response = client.get(f"/reconciliation-runs/{run.pk}/progress/", **HTMX)
    assert response.status_code == 200 and "<html" not in response.content.decode()

    response = client.post(f"/reconciliation-runs/{run.pk}/cancel/")
    assert response.status_code == 302
    assert messages_of(response) == [
        f"Asked run #{run.pk} to stop; it stops after the batch in hand."
    ]
    assert ReconciliationRun.objects.get(pk=run.pk).cancel_requested
    html = page(client, f"/reconciliation-runs/{run.pk}/progress/")
    assert "Cancel requested" in html and "Cancel run" not in html


def test_progress_answers_286_with_the_figures_once_finished(client, engineer, job):
    run = services.start_run(engineer, job)
    client.force_login(engineer)
    assert "Waiting for a worker" in page(client, f"/reconciliation-runs/{run.pk}/progress/")
    jobs.execute(ReconciliationRun, run.pk, run_job)
    response = client.get(f"/reconciliation-runs/{run.pk}/progress/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 286
    assert "hx-get" not in html and "33.333%" in html and 'id="samples-mismatched"' in html


def test_a_viewer_sees_progress_without_a_cancel_button(client, engineer, viewer, job):
    run = services.start_run(engineer, job)
    client.force_login(viewer)
    assert "Cancel run" not in page(client, f"/reconciliation-runs/{run.pk}/")
    assert client.post(f"/reconciliation-runs/{run.pk}/cancel/").status_code == 403
    assert not ReconciliationRun.objects.get(pk=run.pk).cancel_requested


def test_cancelling_a_finished_run_says_so(client, engineer, failed_run):
    client.force_login(engineer)
    response = client.post(f"/reconciliation-runs/{failed_run.pk}/cancel/")
    assert messages_of(response) == [f"Run #{failed_run.pk} had already finished."]


# ---------------------------------------------------------------- the report


def test_the_difference_report_downloads_as_csv(client, viewer, failed_run):
    client.force_login(viewer)
    response = client.get(f"/reconciliation-runs/{failed_run.pk}/report.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert f'filename="int-042-orders-run-{failed_run.pk}.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["difference", "order_id", "column", "source value", "target value"]
    assert ["mismatched", "2", "amount", "5.00", "6.00"] in rows


def test_a_run_without_a_report_has_no_download(client, engineer, job, failed_run):
    run = services.start_run(engineer, job)
    client.force_login(engineer)
    assert client.get(f"/reconciliation-runs/{run.pk}/report.csv").status_code == 404
    ReconciliationRun.objects.filter(pk=failed_run.pk).update(report_file="../../etc/passwd")
    assert client.get(f"/reconciliation-runs/{failed_run.pk}/report.csv").status_code == 404


# ---------------------------------------------------------------- raise defect


def test_a_run_below_target_raises_a_defect_once(client, engineer, failed_run):
    client.force_login(engineer)
    html = page(client, f"/reconciliation-runs/{failed_run.pk}/")
    assert f'action="/reconciliation-runs/{failed_run.pk}/defect/"' in html
    assert '<option value="high" selected>High</option>' in html
    response = client.post(
        f"/reconciliation-runs/{failed_run.pk}/defect/", {"severity": "critical", "phase": "uat"}
    )
    defect = Defect.objects.get()
    assert response.status_code == 302 and response["Location"] == defect.get_absolute_url()
    assert (defect.severity, defect.phase_found) == ("critical", "uat")
    assert "accuracy 33.333% below 99.500%" in defect.title
    html = page(client, f"/reconciliation-runs/{failed_run.pk}/")
    assert f'href="{defect.get_absolute_url()}">Defect #{defect.pk}' in html
    assert "Raise defect" not in html
    response = client.post(
        f"/reconciliation-runs/{failed_run.pk}/defect/", {"severity": "high", "phase": "sit"}
    )
    assert messages_of(response) == [f"Defect #{defect.pk} was raised from this run already."]
    assert Defect.objects.count() == 1


def test_a_defect_needs_a_known_severity_and_phase(client, engineer, failed_run):
    client.force_login(engineer)
    response = client.post(
        f"/reconciliation-runs/{failed_run.pk}/defect/", {"severity": "apocalyptic", "phase": "sit"}
    )
    assert response.status_code == 302
    assert messages_of(response) == ["Choose a severity and the phase the defect was found in."]
    assert not Defect.objects.exists()


def test_a_run_that_met_its_target_raises_no_defect(client, engineer, job):
    job.accuracy_target = Decimal("30")
    services.save_job(engineer, job)
    run = run_now(engineer, job)
    client.force_login(engineer)
    response = client.post(
        f"/reconciliation-runs/{run.pk}/defect/", {"severity": "high", "phase": "sit"}
    )
    assert messages_of(response) == ["Only a run below its accuracy target raises a defect."]
    assert not Defect.objects.exists()


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_viewers_and_other_teams_raise_no_defect(request, client, persona, failed_run):
    client.force_login(request.getfixturevalue(persona))
    html = page(client, f"/reconciliation-runs/{failed_run.pk}/")
    assert "Raise defect" not in html
    response = client.post(
        f"/reconciliation-runs/{failed_run.pk}/defect/", {"severity": "high", "phase": "sit"}
    )
    assert response.status_code == 403
    assert not Defect.objects.exists()


def test_the_run_page_has_constant_queries(
    client, engineer, job, failed_run, django_assert_num_queries
):
    client.force_login(engineer)
    # session + user + run (with job, interface, team, sources, spec, requester, defect)
    # + the user's teams
    with django_assert_num_queries(4):
        assert client.get(f"/reconciliation-runs/{failed_run.pk}/").status_code == 200
    assert failed_run.status == JobStatus.FAILED
