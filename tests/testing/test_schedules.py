"""Scheduled test runs: cron validation, next occurrences, the beat tick, the pages and the API."""

import logging
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.models import AuditAction, AuditEntry, JobStatus
from apps.testing import schedules, services
from apps.testing.models import TestRun, TestSchedule
from apps.testing.tasks import run_due_schedules as run_due_schedules_task
from tests.factories import EndpointFactory, EnvironmentFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)  # a Monday


@pytest.fixture
def endpoint(interface_a, environment):
    return EndpointFactory(interface=interface_a, environment=environment)


@pytest.fixture
def schedule(endpoint, engineer):
    """An hourly schedule of INT-042 in UAT, due at 10:00 on NOW's day."""
    schedule = schedules.save_schedule(
        engineer,
        TestSchedule(
            interface=endpoint.interface,
            environment=endpoint.environment,
            name="hourly smoke",
            cron="0 * * * *",
            tag="smoke",
        ),
    )
    TestSchedule.objects.filter(pk=schedule.pk).update(next_run_at=NOW.replace(second=0))
    schedule.refresh_from_db()
    return schedule


# ---------------------------------------------------------------- cron expressions


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "'61' is not a minute (0-59)."),
        ("0 24 * * *", "'24' is not an hour (0-23)."),
        ("0 0 0 * *", "'0' is not a day of the month (1-31)."),
        ("0 0 * 13 *", "'13' is not a month (1-12 or JAN-DEC)."),
        ("0 0 * JANX *", "'JANX' is not a month (1-12 or JAN-DEC)."),
        ("0 0 * * 8", "'8' is not a day of the week (0-7 or SUN-SAT)."),
        ("0 0 * * MON-FUN", "'FUN' is not a day of the week (0-7 or SUN-SAT)."),
        ("0 9-17/0 * * *", "'0' is not a step of hours (a whole number from 1)."),
        ("30-10 * * * *", "'30-10' runs backwards: write the smaller minute first."),
        ("0 0 * * MON#6", "'6' is not a week of the month (1-5)."),
        ("a b c d e", "'a' is not a minute (0-59)."),
        (
            "* * *",
            "Five fields are needed (minute hour day-of-month month day-of-week); '* * *' has 3.",
        ),
        (
            "0 0 1 1 * 2030",
            "Five fields are needed (minute hour day-of-month month day-of-week); "
            "'0 0 1 1 * 2030' has 6.",
        ),
        (
            "@reboot",
            "'@reboot' is not an alias: use one of @yearly, @annually, @monthly, @weekly, "
            "@daily, @midnight, @hourly.",
        ),
        ("0 0 30 FEB *", "'0 0 30 FEB *' never runs: none of its months has that day."),
        ("  ", "Give a cron expression, e.g. '0 6 * * MON-FRI' or '@daily'."),
    ],
)
def test_bad_cron_expressions_are_refused_with_a_clear_message(cron, message):
    with pytest.raises(schedules.CronError) as caught:
        schedules.check_cron(cron)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * * *", "'* * * * *' runs as often as every 1 minute; "),
        ("*/4 * * * *", "'*/4 * * * *' runs as often as every 4 minutes; "),
        ("0,3 6 * * *", "'0,3 6 * * *' runs as often as every 3 minutes; "),
        # 23:58 and 00:01 are three minutes apart across midnight.
        ("1,58 0,23 * * *", "'1,58 0,23 * * *' runs as often as every 3 minutes; "),
    ],
)
def test_schedules_more_frequent_than_the_minimum_are_refused(cron, message):
    with pytest.raises(schedules.CronError) as caught:
        schedules.check_cron(cron)
    assert message in str(caught.value)
    assert str(caught.value).endswith("schedules may run at most every 5 minutes.")


def test_the_minimum_interval_is_a_setting(settings):
    settings.PONTIS_SCHEDULE_MIN_INTERVAL_MINUTES = 1
    assert schedules.check_cron("* * * * *") == "* * * * *"
    settings.PONTIS_SCHEDULE_MIN_INTERVAL_MINUTES = 60
    with pytest.raises(schedules.CronError, match="at most every 60 minutes"):
        schedules.check_cron("*/30 * * * *")
    assert schedules.check_cron("0 * * * *") == "0 * * * *"


def test_the_default_minimum_interval_is_five_minutes():
    assert settings.PONTIS_SCHEDULE_MIN_INTERVAL_MINUTES == 5
    assert schedules.check_cron("*/5 * * * *") == "*/5 * * * *"


@pytest.mark.parametrize(
    "cron",
    ["0 6 * * MON-FRI", "0 6 * * mon-fri", "15 3 1 JAN,JUL *", "0 0 L * *", "0 0 * * 5L", "@daily"],
)
def test_good_cron_expressions_pass(cron):
    assert schedules.check_cron(cron) == cron


def test_cron_expressions_are_tidied():
    assert schedules.check_cron("  0   6 * *\tMON ") == "0 6 * * MON"


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 * * * *", NOW, datetime(2026, 3, 2, 11, 0, tzinfo=UTC)),
        (
            "0 6 * * MON-FRI",
            datetime(2026, 3, 6, 6, 0, tzinfo=UTC),
            datetime(2026, 3, 9, 6, 0, tzinfo=UTC),
        ),
        ("@daily", NOW, datetime(2026, 3, 3, 0, 0, tzinfo=UTC)),
        ("@hourly", NOW, datetime(2026, 3, 2, 11, 0, tzinfo=UTC)),
        ("0 0 L * *", NOW, datetime(2026, 3, 31, 0, 0, tzinfo=UTC)),
        ("30 2 29 FEB *", NOW, datetime(2028, 2, 29, 2, 30, tzinfo=UTC)),
    ],
)
def test_next_occurrence_is_strictly_after_in_utc(cron, after, expected):
    assert schedules.next_occurrence(cron, after) == expected


def test_next_occurrence_reads_other_time_zones_as_utc():
    from zoneinfo import ZoneInfo

    after = datetime(2026, 3, 2, 11, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # 10:30 UTC
    assert schedules.next_occurrence("0 * * * *", after) == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def test_next_three_occurrences_and_description():
    assert schedules.next_occurrences(
        "0 6 * * MON-FRI", datetime(2026, 3, 6, 7, 0, tzinfo=UTC)
    ) == [
        datetime(2026, 3, 9, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 10, 6, 0, tzinfo=UTC),
        datetime(2026, 3, 11, 6, 0, tzinfo=UTC),
    ]
    assert schedules.describe("0 6 * * MON-FRI") == "At 06:00 on Monday through Friday"


# ---------------------------------------------------------------- saving


def test_saving_computes_next_run_and_records_the_creator_and_audit(endpoint, engineer):
    saved = schedules.save_schedule(
        engineer,
        TestSchedule(
            interface=endpoint.interface,
            environment=endpoint.environment,
            name="nightly",
            cron="0 2 * * *",
        ),
    )
    assert saved.created_by == engineer
    assert saved.next_run_at == schedules.next_occurrence("0 2 * * *", timezone.now())
    entry = AuditEntry.objects.get(object_id=str(saved.pk), action=AuditAction.CREATE)
    assert entry.actor == engineer
    assert entry.changes["cron"] == [None, "0 2 * * *"]


def test_renaming_keeps_a_due_run_and_changing_cron_moves_it(schedule, engineer):
    due = schedule.next_run_at
    schedule.name = "renamed"
    schedules.save_schedule(engineer, schedule)
    schedule.refresh_from_db()
    assert schedule.next_run_at == due

    schedule.cron = "0 3 * * *"
    schedules.save_schedule(engineer, schedule)
    schedule.refresh_from_db()
    assert schedule.next_run_at == schedules.next_occurrence("0 3 * * *", timezone.now())
    assert (
        AuditEntry.objects.filter(object_id=str(schedule.pk), action=AuditAction.UPDATE).count()
        == 2
    )


def test_disabling_clears_the_next_run_and_enabling_sets_it(schedule, engineer):
    schedule.is_enabled = False
    schedules.save_schedule(engineer, schedule)
    schedule.refresh_from_db()
    assert schedule.next_run_at is None
    schedule.is_enabled = True
    schedules.save_schedule(engineer, schedule)
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()


def test_a_schedule_needs_an_endpoint_in_its_environment(endpoint, engineer):
    staging = EnvironmentFactory(name="Staging", slug="staging")
    with pytest.raises(ValidationError) as caught:
        schedules.save_schedule(
            engineer,
            TestSchedule(
                interface=endpoint.interface, environment=staging, name="x", cron="0 2 * * *"
            ),
        )
    assert caught.value.message_dict == {"environment": ["INT-042 has no endpoint in Staging."]}
    assert TestSchedule.objects.count() == 0


def test_another_team_cannot_save_a_schedule(endpoint, engineer_b):
    with pytest.raises(PermissionDenied):
        schedules.save_schedule(
            engineer_b,
            TestSchedule(
                interface=endpoint.interface,
                environment=endpoint.environment,
                name="x",
                cron="0 2 * * *",
            ),
        )


def test_only_a_schedule_may_start_a_run_without_an_actor(interface_a, environment):
    with pytest.raises(PermissionDenied):
        services.start_run(None, interface_a, environment)
    assert TestRun.objects.count() == 0


# ---------------------------------------------------------------- the beat tick


def test_a_due_schedule_starts_one_run_and_moves_its_next_run(schedule):
    assert schedules.run_due_schedules(now=NOW) == 1
    run = TestRun.objects.get()
    assert (run.interface, run.environment, run.schedule) == (
        schedule.interface,
        schedule.environment,
        schedule,
    )
    assert run.tag == "smoke" and run.status == JobStatus.QUEUED and run.requested_by is None
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert schedule.last_run_at == NOW


def test_two_ticks_at_the_same_instant_start_one_run(schedule):
    assert schedules.run_due_schedules(now=NOW) == 1
    assert schedules.run_due_schedules(now=NOW) == 0
    assert TestRun.objects.count() == 1


def test_a_tick_that_loses_the_claim_starts_nothing(schedule):
    # Another beat claims the schedule after this one read it as due, before it claims.
    real_next_occurrence = schedules.next_occurrence
    other_beat = []

    def next_occurrence_while_another_beat_runs(cron, after):
        if not other_beat:
            other_beat.append("started")
            other_beat.append(schedules.run_due_schedules(now=NOW))
        return real_next_occurrence(cron, after)

    with mock.patch.object(schedules, "next_occurrence", next_occurrence_while_another_beat_runs):
        assert schedules.run_due_schedules(now=NOW) == 0
    assert other_beat == ["started", 1]
    assert TestRun.objects.count() == 1


def test_a_schedule_not_yet_due_does_not_run(schedule):
    assert schedules.run_due_schedules(now=NOW.replace(hour=9, minute=59)) == 0
    assert TestRun.objects.count() == 0


def test_an_active_run_skips_the_occurrence(schedule, caplog):
    active = TestRun.objects.create(
        interface=schedule.interface, environment=schedule.environment, status=JobStatus.RUNNING
    )
    with caplog.at_level(logging.INFO, logger="apps.testing.schedules"):
        assert schedules.run_due_schedules(now=NOW) == 0
    assert list(TestRun.objects.all()) == [active]
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert f"Run #{active.pk} of INT-042 in UAT is still running." in caplog.text


def test_a_disabled_schedule_never_runs(schedule):
    TestSchedule.objects.filter(pk=schedule.pk).update(is_enabled=False)
    assert schedules.run_due_schedules(now=NOW + timedelta(days=3)) == 0
    assert TestRun.objects.count() == 0


def test_missed_windows_start_one_run(schedule):
    three_days_later = NOW + timedelta(days=3)
    assert schedules.run_due_schedules(now=three_days_later) == 1
    assert TestRun.objects.count() == 1
    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)
    assert schedules.run_due_schedules(now=three_days_later) == 0


def test_each_due_schedule_runs_once(schedule, engineer, interface_a):
    production = EnvironmentFactory(name="Prod", slug="prod")
    EndpointFactory(interface=interface_a, environment=production)
    other = schedules.save_schedule(
        engineer,
        TestSchedule(interface=interface_a, environment=production, name="prod", cron="@daily"),
    )
    TestSchedule.objects.filter(pk=other.pk).update(next_run_at=NOW - timedelta(hours=10))
    assert schedules.run_due_schedules(now=NOW) == 2
    assert sorted(TestRun.objects.values_list("schedule__name", flat=True)) == [
        "hourly smoke",
        "prod",
    ]


def test_the_task_runs_due_schedules_and_beat_sends_it_every_minute(schedule):
    TestSchedule.objects.filter(pk=schedule.pk).update(
        next_run_at=timezone.now() - timedelta(minutes=1)
    )
    assert run_due_schedules_task.delay().get() == "started 1 scheduled run(s)"
    assert TestRun.objects.filter(schedule=schedule).count() == 1
    assert settings.CELERY_BEAT_SCHEDULE["run-due-test-schedules"] == {
        "task": "apps.testing.tasks.run_due_schedules",
        "schedule": 60.0,
    }


# ---------------------------------------------------------------- pages


@pytest.fixture
def signed_in(client, engineer):
    client.force_login(engineer)
    return client


def test_the_list_shows_cron_next_runs_last_run_and_controls(signed_in, schedule):
    schedules.run_due_schedules(now=NOW)
    run = TestRun.objects.get()
    before = schedules.next_occurrences("0 * * * *", timezone.now())
    page = signed_in.get("/interfaces/INT-042/schedules/").content.decode()
    after = schedules.next_occurrences("0 * * * *", timezone.now())
    assert "hourly smoke" in page and "<code>0 * * * *</code>" in page
    assert "At the start of every hour" in page
    # The next three run times (the request may have crossed the hour).
    assert any(
        all(moment.strftime("%a %Y-%m-%d %H:%M") in page for moment in upcoming)
        for upcoming in (before, after)
    )
    assert f'href="/test-runs/{run.pk}/"' in page
    assert "New schedule" in page and "Edit" in page and "Delete" in page
    assert f'action="/test-schedules/{schedule.pk}/enabled/"' in page


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_readers_see_the_list_without_controls(client, request, persona, schedule):
    client.force_login(request.getfixturevalue(persona))
    page = client.get("/interfaces/INT-042/schedules/").content.decode()
    assert "hourly smoke" in page
    assert "New schedule" not in page and "Edit" not in page and "Delete" not in page
    assert "/enabled/" not in page


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_readers_cannot_write_schedules_in_the_browser(client, request, persona, schedule):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/interfaces/INT-042/schedules/new/").status_code == 403
    assert (
        client.post(
            "/interfaces/INT-042/schedules/new/",
            {"name": "x", "environment": schedule.environment_id, "cron": "@daily"},
        ).status_code
        == 403
    )
    assert client.get(f"/test-schedules/{schedule.pk}/edit/").status_code == 403
    assert client.post(f"/test-schedules/{schedule.pk}/edit/", {"name": "x"}).status_code == 403
    assert (
        client.post(f"/test-schedules/{schedule.pk}/enabled/", {"enabled": "0"}).status_code == 403
    )
    assert client.get(f"/test-schedules/{schedule.pk}/delete/").status_code == 403
    assert client.post(f"/test-schedules/{schedule.pk}/delete/").status_code == 403
    schedule.refresh_from_db()
    assert schedule.name == "hourly smoke" and schedule.is_enabled
    assert AuditEntry.objects.filter(action=AuditAction.DELETE).count() == 0
    assert TestSchedule.objects.count() == 1


def test_engineer_creates_a_schedule_in_the_browser(signed_in, endpoint, engineer):
    form = signed_in.get("/interfaces/INT-042/schedules/new/").content.decode()
    assert "New schedule for INT-042" in form and "UAT" in form
    response = signed_in.post(
        "/interfaces/INT-042/schedules/new/",
        {
            "name": "nightly",
            "environment": endpoint.environment_id,
            "cron": "0  2 * * *",
            "is_enabled": "on",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/interfaces/INT-042/schedules/"
    saved = TestSchedule.objects.get()
    assert (saved.cron, saved.created_by, saved.is_enabled) == ("0 2 * * *", engineer, True)
    assert saved.next_run_at is not None
    assert AuditEntry.objects.filter(
        object_id=str(saved.pk), action=AuditAction.CREATE, actor=engineer
    ).exists()


def test_the_form_refuses_a_bad_cron_and_saves_nothing(signed_in, endpoint):
    response = signed_in.post(
        "/interfaces/INT-042/schedules/new/",
        {"name": "nightly", "environment": endpoint.environment_id, "cron": "61 * * * *"},
    )
    assert response.status_code == 200
    assert "&#x27;61&#x27; is not a minute (0-59)." in response.content.decode()
    assert TestSchedule.objects.count() == 0


def test_live_validation_answers_the_cron_fields_errors(signed_in, endpoint):
    response = signed_in.post(
        "/interfaces/INT-042/schedules/new/",
        {"cron": "*/2 * * * *", "_validate": "1"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TRIGGER_NAME="cron",
    )
    assert response.content.decode().strip() == (
        '<ul class="errors"><li>&#x27;*/2 * * * *&#x27; runs as often as every 2 minutes; '
        "schedules may run at most every 5 minutes.</li></ul>"
    )
    assert TestSchedule.objects.count() == 0


def test_engineer_edits_disables_and_deletes_a_schedule(signed_in, schedule, engineer):
    response = signed_in.post(
        f"/test-schedules/{schedule.pk}/edit/",
        {
            "name": "smoke",
            "environment": schedule.environment_id,
            "cron": "@daily",
            "tag": "smoke",
            "is_enabled": "on",
        },
    )
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.name, schedule.cron) == ("smoke", "@daily")

    assert (
        signed_in.post(f"/test-schedules/{schedule.pk}/enabled/", {"enabled": "0"}).status_code
        == 302
    )
    schedule.refresh_from_db()
    assert not schedule.is_enabled and schedule.next_run_at is None

    confirm = signed_in.get(f"/test-schedules/{schedule.pk}/delete/").content.decode()
    assert "Delete schedule INT-042: smoke?" in confirm
    assert 'href="/interfaces/INT-042/schedules/"' in confirm
    response = signed_in.post(f"/test-schedules/{schedule.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/interfaces/INT-042/schedules/"
    assert not TestSchedule.objects.exists()
    actions = list(
        AuditEntry.objects.filter(object_id=str(schedule.pk), content_type__model="testschedule")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "update", "delete"]


def test_the_schedule_list_has_constant_queries(
    signed_in, endpoint, engineer, django_assert_num_queries
):
    def add(count):
        for index in range(count):
            schedules.save_schedule(
                engineer,
                TestSchedule(
                    interface=endpoint.interface,
                    environment=endpoint.environment,
                    name=f"s{TestSchedule.objects.count()}-{index}",
                    cron="0 2 * * *",
                ),
            )

    add(1)
    # session + user + interface + can_change (team ids) + schedules with their last run
    with django_assert_num_queries(5):
        assert signed_in.get("/interfaces/INT-042/schedules/").status_code == 200
    add(10)
    with django_assert_num_queries(5):
        assert signed_in.get("/interfaces/INT-042/schedules/").status_code == 200


# ---------------------------------------------------------------- API


def test_api_creates_a_schedule_with_a_computed_next_run(engineer, api_as, endpoint):
    response = api_as(engineer).post(
        "/api/v1/test-schedules/",
        {
            "interface": "INT-042",
            "environment": "uat",
            "name": "nightly",
            "cron": "0 2 * * MON-FRI",
            "next_run_at": "2000-01-01T00:00:00Z",
            "last_run_at": "2000-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    saved = TestSchedule.objects.get()
    assert body["next_run_at"] == saved.next_run_at.isoformat().replace("+00:00", "Z")
    assert saved.next_run_at > timezone.now() and saved.last_run_at is None
    assert body["created_by"] == "engineer"
    assert body["description"] == "At 02:00 on Monday through Friday"
    assert len(body["upcoming"]) == 3
    assert AuditEntry.objects.filter(object_id=str(saved.pk), action=AuditAction.CREATE).exists()


def test_api_refuses_a_bad_cron_as_a_problem(engineer, api_as, endpoint):
    response = api_as(engineer).post(
        "/api/v1/test-schedules/",
        {"interface": "INT-042", "environment": "uat", "name": "x", "cron": "0 0 * * 8"},
        format="json",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "cron",
            "message": "'8' is not a day of the week (0-7 or SUN-SAT).",
            "code": "invalid",
        }
    ]


def test_api_refuses_an_environment_without_endpoint(engineer, api_as, endpoint):
    EnvironmentFactory(name="Staging", slug="staging")
    response = api_as(engineer).post(
        "/api/v1/test-schedules/",
        {"interface": "INT-042", "environment": "staging", "name": "x", "cron": "@daily"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "INT-042 has no endpoint in Staging."


def test_api_updates_and_deletes_with_audit(engineer, api_as, schedule):
    client = api_as(engineer)
    response = client.patch(
        f"/api/v1/test-schedules/{schedule.pk}/", {"is_enabled": False}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["next_run_at"] is None and response.json()["upcoming"] == []
    assert client.delete(f"/api/v1/test-schedules/{schedule.pk}/").status_code == 204
    assert list(
        AuditEntry.objects.filter(object_id=str(schedule.pk), content_type__model="testschedule")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["create", "update", "delete"]


def test_api_filters_by_interface_code(engineer, api_as, schedule, interface_b, environment):
    EndpointFactory(interface=interface_b, environment=environment)
    TestSchedule.objects.create(
        interface=interface_b, environment=environment, name="other", cron="@daily"
    )
    client = api_as(engineer)
    assert client.get("/api/v1/test-schedules/").json()["count"] == 2
    body = client.get("/api/v1/test-schedules/?interface__code=INT-042").json()
    assert [item["name"] for item in body["results"]] == ["hourly smoke"]


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_api_readers_cannot_write_schedules(request, persona, api_as, schedule):
    client = api_as(request.getfixturevalue(persona))
    url = f"/api/v1/test-schedules/{schedule.pk}/"
    assert client.get(url).status_code == 200
    payload = {"interface": "INT-042", "environment": "uat", "name": "x", "cron": "@daily"}
    assert client.post("/api/v1/test-schedules/", payload, format="json").status_code == 403
    assert client.patch(url, {"name": "hijacked"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    schedule.refresh_from_db()
    assert schedule.name == "hourly smoke"
    assert TestSchedule.objects.count() == 1


def test_api_engineer_cannot_move_a_schedule_to_another_teams_interface(
    engineer, api_as, schedule, interface_b, environment
):
    EndpointFactory(interface=interface_b, environment=environment)
    response = api_as(engineer).patch(
        f"/api/v1/test-schedules/{schedule.pk}/", {"interface": "INT-043"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "You may only write test schedules of your own teams' interfaces."
    )


def test_api_list_has_constant_queries(engineer, api_as, endpoint, django_assert_max_num_queries):
    client = api_as(engineer)
    for index in range(12):
        TestSchedule.objects.create(
            interface=endpoint.interface,
            environment=endpoint.environment,
            name=f"s{index}",
            cron="0 2 * * *",
        )
    # token lookup + last_used update + count + page (with interface, environment, creator)
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/test-schedules/").status_code == 200
