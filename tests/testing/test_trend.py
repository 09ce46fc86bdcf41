"""The pass-rate trend: per environment, on the contracts page as an SVG chart and in the API."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.models import JobStatus
from apps.testing import trend
from apps.testing.models import TestRun
from tests.factories import EndpointFactory, EnvironmentFactory

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def sit(db):
    return EnvironmentFactory(name="SIT", slug="sit", position=2)


def make_runs(interface, environment, outcomes, **fields):
    """One finished run per (passed, failed, errored), a day apart, oldest first."""
    runs = []
    for day, (passed, failed, errored) in enumerate(outcomes):
        runs.append(
            TestRun.objects.create(
                interface=interface,
                environment=environment,
                status=fields.get(
                    "status", JobStatus.SUCCEEDED if not failed else JobStatus.FAILED
                ),
                passed=passed,
                failed=failed,
                errored=errored,
                finished_at=START + timedelta(days=day),
                is_manual=fields.get("is_manual", False),
            )
        )
    return runs


def test_pass_rates_are_of_finished_automated_runs_oldest_first(interface_a, environment):
    first, second, third = make_runs(interface_a, environment, [(8, 2, 0), (0, 0, 0), (5, 3, 2)])
    make_runs(interface_a, environment, [(1, 0, 0)], is_manual=True)
    make_runs(interface_a, environment, [(1, 0, 0)], status=JobStatus.RUNNING)
    make_runs(interface_a, environment, [(1, 0, 0)], status=JobStatus.QUEUED)
    points = trend.recent_pass_rates(interface_a)
    assert [(p.run_id, p.pass_rate) for p in points] == [
        (first.pk, 0.8),
        (second.pk, None),
        (third.pk, 0.5),
    ]
    assert points[0].environment_slug == "uat" and points[0].finished_at == START


def test_the_limit_keeps_the_latest_runs_of_each_environment(interface_a, environment, sit):
    uat_runs = make_runs(interface_a, environment, [(1, 0, 0)] * 5)
    sit_runs = make_runs(interface_a, sit, [(0, 1, 0)] * 4)
    points = trend.recent_pass_rates(interface_a, limit=3)
    # SIT comes first along the promotion path
    assert [p.run_id for p in points] == [r.pk for r in sit_runs[-3:] + uat_runs[-3:]]
    only_uat = trend.recent_pass_rates(interface_a, environment=environment, limit=2)
    assert [p.run_id for p in only_uat] == [r.pk for r in uat_runs[-2:]]


def test_chart_places_runs_from_left_to_right_and_rates_bottom_to_top(environment):
    points = [
        trend.PassRatePoint(1, environment.pk, "uat", "UAT", START, 10, 0, 0),
        trend.PassRatePoint(2, environment.pk, "uat", "UAT", START, 9, 1, 0),
        trend.PassRatePoint(3, environment.pk, "uat", "UAT", START, 0, 0, 0),
        trend.PassRatePoint(4, environment.pk, "uat", "UAT", START, 0, 3, 1),
    ]
    chart = trend.chart_of(environment, points)
    top, bottom = trend.TOP, trend.HEIGHT - trend.BOTTOM
    assert [(p.x, p.y, p.tone) for p in chart.points] == [
        (60.0, top, "ok"),
        (244.0, 29.6, "warn"),
        (428.0, bottom, "none"),
        (612.0, bottom, "bad"),
    ]
    # the line skips the run without results
    assert chart.line == "60.0,14.0 244.0,29.6 612.0,170.0"
    assert chart.y_ticks == [(170.0, 0), (131.0, 25), (92.0, 50), (53.0, 75), (14.0, 100)]
    single = trend.chart_of(environment, points[:1])
    assert single.points[0].x == (trend.LEFT + trend.WIDTH - trend.RIGHT) / 2


@pytest.mark.parametrize("count", [2, 30])
def test_trends_take_two_queries_whatever_the_number_of_runs(
    count, interface_a, environment, sit, django_assert_num_queries
):
    EndpointFactory(interface=interface_a, environment=sit, base_url="https://sit.example.com/")
    make_runs(interface_a, environment, [(3, 1, 0)] * count)
    # the environments with an endpoint or a finished run; the latest runs of each
    with django_assert_num_queries(2):
        charts = trend.trends_for(interface_a)
        assert [(c.environment.name, len(c.points)) for c in charts] == [
            ("SIT", 0),
            ("UAT", count),
        ]


def test_the_contracts_page_draws_a_chart_per_environment(
    client, viewer, interface_a, environment, sit
):
    EndpointFactory(interface=interface_a, environment=sit, base_url="https://sit.example.com/")
    runs = make_runs(interface_a, environment, [(4, 1, 0), (5, 0, 0), (0, 0, 0)])
    client.force_login(viewer)
    page = client.get("/interfaces/INT-042/contracts/").content.decode()
    assert page.count('<svg class="trend-chart"') == 1
    assert "No finished runs in SIT yet." in page
    assert f'<a href="/test-runs/{runs[0].pk}/" class="trend-point">' in page
    assert f"<title>Run #{runs[0].pk} · 2025-03-01 09:30 · 80% (4 of 5 passed)</title>" in page
    assert f"<title>Run #{runs[2].pk} · 2025-03-03 09:30 · no results recorded</title>" in page
    assert ">100%</text>" in page and ">0%</text>" in page
    assert "latest 80%" not in page and "3 runs" in page


def test_the_contracts_page_without_runs_shows_an_empty_state(client, viewer, interface_a):
    client.force_login(viewer)
    page = client.get("/interfaces/INT-042/contracts/").content.decode()
    assert "No finished runs yet: the trend appears after the first run." in page
    assert "<svg" not in page


def test_the_contracts_page_takes_the_same_queries_for_2_or_30_runs(
    client, viewer, interface_a, environment
):
    EndpointFactory(interface=interface_a, environment=environment, base_url="https://x.test/")
    client.force_login(viewer)

    def queries_for(count):
        make_runs(interface_a, environment, [(1, 1, 0)] * (count - TestRun.objects.count()))
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/interfaces/INT-042/contracts/").status_code == 200
        return len(queries)

    assert queries_for(2) == queries_for(30)


def test_the_api_answers_the_pass_rates(api_as, viewer, interface_a, environment, sit):
    uat = make_runs(interface_a, environment, [(9, 1, 0), (10, 0, 0)])
    make_runs(interface_a, sit, [(1, 1, 0)])
    response = api_as(viewer).get("/api/v1/interfaces/int-042/pass-rate/?environment=uat")
    assert response.status_code == 200
    assert response.json() == [
        {
            "run": uat[0].pk,
            "environment": "uat",
            "finished_at": "2025-03-01T09:30:00Z",
            "passed": 9,
            "failed": 1,
            "errored": 0,
            "pass_rate": 0.9,
        },
        {
            "run": uat[1].pk,
            "environment": "uat",
            "finished_at": "2025-03-02T09:30:00Z",
            "passed": 10,
            "failed": 0,
            "errored": 0,
            "pass_rate": 1.0,
        },
    ]
    everything = api_as(viewer).get("/api/v1/interfaces/INT-042/pass-rate/?limit=1").json()
    assert [(p["environment"], p["run"]) for p in everything] == [
        ("sit", everything[0]["run"]),
        ("uat", uat[1].pk),
    ]


@pytest.mark.parametrize(
    "query, field, message, code",
    [
        ("limit=0", "limit", "Ensure this value is greater than or equal to 1.", "min_value"),
        ("limit=101", "limit", "Ensure this value is less than or equal to 100.", "max_value"),
        (
            "environment=nowhere",
            "environment",
            "Object with slug=nowhere does not exist.",
            "does_not_exist",
        ),
    ],
)
def test_the_api_refuses_bad_parameters(api_as, viewer, interface_a, query, field, message, code):
    response = api_as(viewer).get(f"/api/v1/interfaces/INT-042/pass-rate/?{query}")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field, "message": message, "code": code}]


def test_the_api_answers_404_for_an_unknown_interface(api_as, viewer, db):
    assert api_as(viewer).get("/api/v1/interfaces/INT-999/pass-rate/").status_code == 404


@pytest.mark.parametrize("count", [2, 30])
def test_the_api_takes_the_same_queries_for_2_or_30_runs(
    count, api_as, viewer, interface_a, environment, django_assert_num_queries
):
    make_runs(interface_a, environment, [(1, 0, 0)] * count)
    client = api_as(viewer)
    client.get("/api/v1/interfaces/INT-042/pass-rate/")  # the token's first use is recorded once
    # the token with its user, the interface, the environment, the latest runs
    with django_assert_num_queries(4):
        response = client.get("/api/v1/interfaces/INT-042/pass-rate/?environment=uat")
    assert len(response.json()) == count
