"""The pass-rate trend chart on the contracts page, in a real browser."""

from datetime import UTC, datetime, timedelta

import pytest

from apps.accounts.models import Role
from apps.core.models import JobStatus
from apps.testing.models import TestRun
from tests.browser.conftest import sign_in
from tests.factories import (
    EndpointFactory,
    EnvironmentFactory,
    InterfaceFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/trend.png"
# (passed, failed, errored) of the runs in UAT, oldest first: a dip and a recovery.
UAT_RUNS = [(10, 0, 0), (9, 1, 0), (7, 2, 1), (4, 5, 1), (8, 2, 0), (10, 0, 0), (0, 0, 0)]


@pytest.fixture
def interface_with_runs(db):
    team = TeamFactory(name="Finance Integration", slug="finance-integration")
    interface = InterfaceFactory(code="INT-042", name="Invoice status to CRM", owner_team=team)
    uat = EnvironmentFactory(name="UAT", slug="uat", position=3)
    sit = EnvironmentFactory(name="SIT", slug="sit", position=2)
    EndpointFactory(interface=interface, environment=sit, base_url="https://sit.example.com/")
    EndpointFactory(interface=interface, environment=uat, base_url="https://uat.example.com/")
    start = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    runs = [
        TestRun.objects.create(
            interface=interface,
            environment=uat,
            status=JobStatus.FAILED if failed or errored else JobStatus.SUCCEEDED,
            passed=passed,
            failed=failed,
            errored=errored,
            finished_at=start + timedelta(days=day),
        )
        for day, (passed, failed, errored) in enumerate(UAT_RUNS)
    ]
    UserFactory(username="viewer", role=Role.VIEWER)
    return runs


def test_the_contracts_page_shows_a_pass_rate_chart(page, interface_with_runs):
    sign_in(page, "viewer")
    page.goto("/interfaces/INT-042/contracts/")
    chart = page.locator("#pass-rate-trend svg.trend-chart")
    assert chart.count() == 1
    assert chart.locator("circle").count() == len(UAT_RUNS)
    assert chart.locator("polyline").count() == 1
    assert page.locator("#pass-rate-trend").get_by_text("No finished runs in SIT yet.").count() == 1
    box = chart.bounding_box()
    assert box["width"] > 400 and box["height"] > 120
    first = interface_with_runs[0]
    assert chart.locator("circle").first.locator("title").text_content() == (
        f"Run #{first.pk} · 2025-03-01 08:00 · 100% (10 of 10 passed)"
    )
    page.locator("#pass-rate-trend").screenshot(path=SCREENSHOT)
    chart.locator("a.trend-point").nth(3).click()
    page.wait_for_url(f"**/test-runs/{interface_with_runs[3].pk}/")
