"""The accuracy trend of a reconciliation job: its last finished runs, and the chart geometry.

One query reads the last ``limit`` finished runs, whatever their number; the chart is drawn
by ``reconciliation/partials/accuracy_trend.html`` from the geometry computed here (drawn
like the pass-rate chart of contract tests, :mod:`apps.testing.trend`, but a full panel wide).

Accuracies sit close to 100 %, so the vertical axis starts at a round floor just below the
lowest accuracy or the target (0, 50, 80, 90, 95, 98, 99, 99.5 or 99.9 %): a drop from
99.9 % to 99.2 % is visible, where a 0–100 % axis would draw a flat line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from apps.core.charts import PlotArea
from apps.core.models import JobStatus
from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
from apps.testing.trend import COLOURS

DEFAULT_LIMIT = 30
# Chart geometry in SVG user units; the SVG scales down to the width of its panel.
WIDTH, HEIGHT = 1000, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 18, 30
INSET = 14  # the first and last runs sit this far inside the axes, clear of them
FLOORS = (
    Decimal(0),
    Decimal(50),
    Decimal(80),
    Decimal(90),
    Decimal(95),
    Decimal(98),
    Decimal(99),
    Decimal("99.5"),
    Decimal("99.9"),
)
HUNDRED = Decimal(100)
TICKS = 4  # intervals between the floor and 100 %
# Cancelled runs compared nothing: the chart leaves them out.
CHARTED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED)


@dataclass
class AccuracyPoint:
    run_id: int
    finished_at: datetime | None
    status: str
    accuracy: Decimal | None
    accuracy_target: Decimal
    met_target: bool | None


@dataclass
class ChartPoint:
    point: AccuracyPoint
    x: float
    y: float
    tone: str  # "ok" (met the target), "bad" (below it), "none" (no accuracy: an error)

    @property
    def colour(self) -> str:
        return COLOURS[self.tone]


@dataclass
class AccuracyChart(PlotArea):
    WIDTH, HEIGHT = WIDTH, HEIGHT
    LEFT, RIGHT, TOP, BOTTOM = LEFT, RIGHT, TOP, BOTTOM

    points: list[ChartPoint] = field(default_factory=list)
    floor: Decimal = Decimal(0)
    target: Decimal | None = None
    width: int = WIDTH
    height: int = HEIGHT

    def y(self, value: Decimal) -> float:
        span = HUNDRED - self.floor
        share = (min(max(value, self.floor), HUNDRED) - self.floor) / span if span else 1
        return round(TOP + (1 - float(share)) * (HEIGHT - TOP - BOTTOM), 1)

    @property
    def y_ticks(self) -> list[tuple[float, str]]:
        step = (HUNDRED - self.floor) / TICKS
        return [
            (self.y(self.floor + step * index), percent_text(self.floor + step * index))
            for index in range(TICKS + 1)
        ]

    @property
    def target_y(self) -> float | None:
        return None if self.target is None else self.y(self.target)

    @property
    def target_text(self) -> str:
        return "" if self.target is None else percent_text(self.target)


def percent_text(value: Decimal) -> str:
    """``Decimal("99.500")`` -> ``"99.5%"``, ``Decimal("100")`` -> ``"100%"``."""
    text = f"{value.quantize(Decimal('0.001')):f}".rstrip("0").rstrip(".")
    return f"{text}%"


def recent_accuracy(job: ReconciliationJob, limit: int = DEFAULT_LIMIT) -> list[AccuracyPoint]:
    """The last ``limit`` finished runs of the job (not cancelled), oldest first: one query."""
    rows = list(
        ReconciliationRun.objects.filter(job=job, status__in=CHARTED_STATUSES)
        .order_by("-created_at", "-pk")
        .values_list("pk", "finished_at", "status", "accuracy", "accuracy_target", "met_target")[
            :limit
        ]
    )
    rows.reverse()
    return [AccuracyPoint(*row) for row in rows]


def floor_for(values: list[Decimal]) -> Decimal:
    """The highest round floor with some room below the lowest value."""
    lowest = min(values) if values else HUNDRED
    room = (HUNDRED - lowest) / 10
    return max(floor for floor in FLOORS if floor <= lowest - room)


def chart_of(points: list[AccuracyPoint], target: Decimal | None = None) -> AccuracyChart:
    """Places the runs evenly from left to right, oldest first; a run without an accuracy
    (it failed to read or compare) sits hollow on the floor."""
    target = target if target is not None else (points[-1].accuracy_target if points else None)
    values = [p.accuracy for p in points if p.accuracy is not None]
    chart = AccuracyChart(
        floor=floor_for(values + ([target] if target is not None else [])), target=target
    )
    first_x, last_x = LEFT + INSET, WIDTH - RIGHT - INSET
    for index, point in enumerate(points):
        if len(points) == 1:
            x = (first_x + last_x) / 2
        else:
            x = first_x + index * (last_x - first_x) / (len(points) - 1)
        tone = "none" if point.accuracy is None else ("ok" if point.met_target else "bad")
        y = chart.y(point.accuracy if point.accuracy is not None else chart.floor)
        chart.points.append(ChartPoint(point, round(x, 1), y, tone))
    return chart


def trend_for(job: ReconciliationJob, limit: int = DEFAULT_LIMIT) -> AccuracyChart:
    return chart_of(recent_accuracy(job, limit), job.accuracy_target)
