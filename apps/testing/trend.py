"""The pass-rate trend of an interface's automated runs, per environment, and its chart geometry.

Pass rate = passed ÷ (passed + failed + errored) of one finished run (None when it recorded
no result). The last ``limit`` finished automated runs of each environment are read in one
query, whatever the number of runs or environments; the chart is drawn by the template
``testing/partials/pass_rate_trend.html`` from the geometry computed here.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from apps.catalog.models import Environment, Interface
from apps.core.charts import PlotArea
from apps.core.models import FINISHED_JOB_STATUSES
from apps.testing.models import TestRun

DEFAULT_LIMIT = 30
MAX_LIMIT = 100

# Chart geometry in SVG user units; the SVG scales to the width of its panel.
WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 30
INSET = 12  # the first and last runs sit this far inside the axes, clear of them
Y_TICKS = (0, 25, 50, 75, 100)
HEALTHY, WARNING = 1.0, 0.8  # point colours: all passed, at least 80 %, below
COLOURS = {"ok": "#1d7a46", "warn": "#c27c00", "bad": "#b42318", "none": "#98a2b3"}


@dataclass
class PassRatePoint:
    run_id: int
    environment_id: int
    environment_slug: str
    environment_name: str
    finished_at: datetime | None
    passed: int
    failed: int
    errored: int

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errored

    @property
    def pass_rate(self) -> float | None:
        return round(self.passed / self.total, 4) if self.total else None


@dataclass
class ChartPoint:
    point: PassRatePoint
    x: float
    y: float
    tone: str  # "ok", "warn", "bad"; "none" for a run without results

    @property
    def colour(self) -> str:
        return COLOURS[self.tone]

    @property
    def percent(self) -> int | None:
        rate = self.point.pass_rate
        return None if rate is None else round(rate * 100)


@dataclass
class TrendChart(PlotArea):
    WIDTH, HEIGHT = WIDTH, HEIGHT
    LEFT, RIGHT, TOP, BOTTOM = LEFT, RIGHT, TOP, BOTTOM

    environment: Environment
    points: list[ChartPoint] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def y_ticks(self) -> list[tuple[float, int]]:
        return [(_y(percent / 100), percent) for percent in Y_TICKS]


def _finished_automated_runs(interface: Interface):
    return TestRun.objects.filter(
        interface=interface, is_manual=False, status__in=FINISHED_JOB_STATUSES
    )


def recent_pass_rates(
    interface: Interface, *, environment: Environment | None = None, limit: int = DEFAULT_LIMIT
) -> list[PassRatePoint]:
    """The last ``limit`` finished automated runs per environment, oldest first: one query."""
    runs = _finished_automated_runs(interface)
    if environment is not None:
        runs = runs.filter(environment=environment)
    rows = (
        runs.annotate(
            recency=Window(
                RowNumber(),
                partition_by=[F("environment_id")],
                order_by=[F("created_at").desc(), F("pk").desc()],
            )
        )
        .filter(recency__lte=limit)
        .order_by("environment__position", "environment_id", "created_at", "pk")
        .values_list(
            "pk",
            "environment_id",
            "environment__slug",
            "environment__name",
            "finished_at",
            "passed",
            "failed",
            "errored",
        )
    )
    return [PassRatePoint(*row) for row in rows]


def _y(rate: float) -> float:
    return round(TOP + (1 - rate) * (HEIGHT - TOP - BOTTOM), 1)


def _tone(rate: float | None) -> str:
    if rate is None:
        return "none"
    if rate >= HEALTHY:
        return "ok"
    return "warn" if rate >= WARNING else "bad"


def chart_of(environment: Environment, points: list[PassRatePoint]) -> TrendChart:
    """Places the runs evenly from left to right, oldest first; a run without results sits on 0 %."""
    first_x, last_x = LEFT + INSET, WIDTH - RIGHT - INSET
    chart = TrendChart(environment=environment)
    for index, point in enumerate(points):
        if len(points) == 1:
            x = (first_x + last_x) / 2
        else:
            x = first_x + index * (last_x - first_x) / (len(points) - 1)
        rate = point.pass_rate
        chart.points.append(ChartPoint(point, round(x, 1), _y(rate or 0.0), _tone(rate)))
    return chart


def trends_for(interface: Interface, limit: int = DEFAULT_LIMIT) -> list[TrendChart]:
    """One chart per environment the interface has an endpoint or finished runs in: two queries."""
    environments = Environment.objects.filter(
        Q(pk__in=interface.endpoints.values("environment_id"))
        | Q(pk__in=_finished_automated_runs(interface).values("environment_id"))
    ).order_by("position", "name")
    by_environment: dict[int, list[PassRatePoint]] = {}
    for point in recent_pass_rates(interface, limit=limit):
        by_environment.setdefault(point.environment_id, []).append(point)
    return [chart_of(env, by_environment.get(env.pk, [])) for env in environments]
