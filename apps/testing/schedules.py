"""Scheduled test runs: cron expressions, their next occurrences, and the beat tick that starts due runs.

Cron expressions have five fields (minute hour day-of-month month day-of-week),
are read in UTC by cronsim (Debian cron semantics, MON/JAN names, ``L`` and
``#``), and may be one of the usual aliases (``@hourly``, ``@daily`` ...).
"""

import logging
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts import policy
from apps.core import audit
from apps.testing import services
from apps.testing.models import TestSchedule

logger = logging.getLogger(__name__)

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MINUTES_PER_DAY = 24 * 60


class CronError(ValueError):
    """A cron expression that is malformed, never fires, or fires too often."""


class _Field:
    """One field of a cron expression: its range, and the names it takes (JAN is 1, SUN is 0)."""

    def __init__(self, label: str, low: int, high: int, names=(), article: str = "a"):
        self.label, self.low, self.high = label, low, high
        self.names, self.article = names, article

    def value(self, text: str) -> int:
        if text.upper() in self.names:
            return self.names.index(text.upper()) + self.low
        if text.isdigit() and self.low <= int(text) <= self.high:
            return int(text)
        names = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        raise CronError(
            f"'{text}' is not {self.article} {self.label} ({self.low}-{self.high}{names})."
        )


MINUTE = _Field("minute", 0, 59)
HOUR = _Field("hour", 0, 23, article="an")
DAY_OF_MONTH = _Field("day of the month", 1, 31)
MONTH = _Field("month", 1, 12, MONTH_NAMES)
DAY_OF_WEEK = _Field("day of the week", 0, 7, DAY_NAMES)
FIELDS = (MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK)


def _check_field(text: str, field: _Field) -> None:
    """Names the first bad value of one field; cronsim stays the judge of what is left."""
    for term in text.split(","):
        base, slash, step = term.partition("/")
        if slash and not (step.isdigit() and int(step) >= 1):
            raise CronError(f"'{step}' is not a step of {field.label}s (a whole number from 1).")
        if base == "*" or (field is DAY_OF_MONTH and base.upper() in ("L", "LW")):
            continue
        if field is DAY_OF_WEEK and "#" in base:
            base, _, nth = base.partition("#")
            if nth not in ("1", "2", "3", "4", "5"):
                raise CronError(f"'{nth}' is not a week of the month (1-5).")
        elif field is DAY_OF_WEEK and base.upper().endswith("L"):
            base = base[:-1]
        first, dash, last = base.partition("-")
        if dash and field.value(first) > field.value(last):
            raise CronError(f"'{base}' runs backwards: write the smaller {field.label} first.")
        field.value(first)


def expand(cron: str) -> str:
    """The five-field form of an expression (aliases replaced), without validating it."""
    text = " ".join(cron.split())
    return ALIASES.get(text.lower(), text)


def _simulator(cron: str, after: datetime) -> CronSim:
    try:
        return CronSim(expand(cron), after.astimezone(UTC))
    except CronSimError as exc:
        raise CronError(f"'{cron}' is not a valid cron expression ({str(exc).lower()}).")


def _shortest_interval_minutes(simulator: CronSim) -> int:
    """The shortest gap between two runs, assuming two days in a row can both match."""
    times = sorted(hour * 60 + minute for hour in simulator.hours for minute in simulator.minutes)
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    gaps.append(MINUTES_PER_DAY - times[-1] + times[0])
    return min(gaps)


def check_cron(cron: str) -> str:
    """Validates an expression and returns it tidied (single spaces); raises CronError saying why.

    Refuses anything but five fields or an alias, values out of range, expressions
    that never fire, and ones firing more often than
    ``PONTIS_SCHEDULE_MIN_INTERVAL_MINUTES``.
    """
    text = " ".join(cron.split())
    if not text:
        raise CronError("Give a cron expression, e.g. '0 6 * * MON-FRI' or '@daily'.")
    if text.startswith("@") and text.lower() not in ALIASES:
        raise CronError(f"'{text}' is not an alias: use one of {', '.join(ALIASES)}.")
    parts = expand(text).split()
    if len(parts) != len(FIELDS):
        raise CronError(
            "Five fields are needed (minute hour day-of-month month day-of-week); "
            f"'{text}' has {len(parts)}."
        )
    for part, field in zip(parts, FIELDS, strict=True):
        _check_field(part, field)
    try:
        simulator = CronSim(expand(text), datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        # The fields passed the checks above, so cronsim objects to the combination:
        # a day of the month that none of the chosen months has (30 FEB).
        if "day-of-month" in str(exc):
            raise CronError(f"'{text}' never runs: none of its months has that day.")
        raise CronError(f"'{text}' is not a valid cron expression ({str(exc).lower()}).")
    try:
        next(simulator)
    except StopIteration:
        raise CronError(f"'{text}' never runs.")
    limit = settings.PONTIS_SCHEDULE_MIN_INTERVAL_MINUTES
    shortest = _shortest_interval_minutes(simulator)
    if shortest < limit:
        raise CronError(
            f"'{text}' runs as often as every {shortest} minute{'s' if shortest != 1 else ''}; "
            f"schedules may run at most every {limit} minutes."
        )
    return text


def next_occurrence(cron: str, after: datetime) -> datetime:
    """The first time (UTC) strictly after ``after`` at which the expression fires."""
    try:
        return next(_simulator(cron, after))
    except StopIteration:
        raise CronError(f"'{cron}' never runs.")


def next_occurrences(cron: str, after: datetime, count: int = 3) -> list[datetime]:
    simulator = _simulator(cron, after)
    times = []
    for moment in simulator:
        times.append(moment)
        if len(times) == count:
            break
    return times


def describe(cron: str) -> str:
    """The expression in words, e.g. "At 06:00 on Monday through Friday" (UTC)."""
    try:
        return _simulator(cron, timezone.now()).explain()
    except CronError:
        return ""


def validate_schedule(schedule: TestSchedule) -> None:
    """Refuses a schedule that could never start a useful run. Raises ValidationError by field."""
    errors = {}
    try:
        check_cron(schedule.cron or "")
    except CronError as exc:
        errors["cron"] = str(exc)
    no_endpoint = (
        schedule.interface_id
        and schedule.environment_id
        and not schedule.interface.endpoints.filter(environment_id=schedule.environment_id).exists()
    )
    if no_endpoint:
        errors["environment"] = (
            f"{schedule.interface.code} has no endpoint in {schedule.environment.name}."
        )
    if errors:
        raise ValidationError(errors)


def save_schedule(actor, schedule: TestSchedule) -> TestSchedule:
    """Validates and saves a schedule with its audit entry, and sets when it runs next.

    ``next_run_at`` is recomputed only when the schedule is new, or its cron or
    enabled state changed, so renaming a schedule never moves or skips a due run.
    ``last_run_at`` belongs to the beat tick and is taken from the stored row.
    """
    policy.require_change(actor, schedule)
    schedule.cron = " ".join((schedule.cron or "").split())
    validate_schedule(schedule)
    with transaction.atomic():
        stored = (
            TestSchedule.objects.select_for_update().filter(pk=schedule.pk).first()
            if schedule.pk
            else None
        )
        if stored is None:
            if schedule.created_by_id is None and actor is not None and actor.is_authenticated:
                schedule.created_by = actor
            changed = True
        else:
            schedule.last_run_at = stored.last_run_at
            schedule.next_run_at = stored.next_run_at
            changed = stored.cron != schedule.cron or stored.is_enabled != schedule.is_enabled
        if not schedule.is_enabled:
            schedule.next_run_at = None
        elif changed or schedule.next_run_at is None:
            schedule.next_run_at = next_occurrence(schedule.cron, timezone.now())
        return audit.save_with_audit(actor, schedule)


def run_due_schedules(now: datetime | None = None) -> int:
    """Starts one run for every enabled schedule that is due; returns how many started.

    Idempotent per occurrence: each due schedule is claimed with a conditional
    update, so two beats (or a redelivered task) never start it twice. A schedule
    whose interface and environment still has an active run skips that
    occurrence. After a long outage a schedule starts one run, not one per
    missed occurrence: its next run is computed from ``now``.
    """
    now = now or timezone.now()
    due = (
        TestSchedule.objects.filter(is_enabled=True, next_run_at__lte=now)
        .select_related("interface", "environment")
        .order_by("next_run_at", "pk")
    )
    started = 0
    for schedule in due:
        try:
            following = next_occurrence(schedule.cron, now)
        except CronError as exc:
            logger.warning("schedule %s (%s) stopped: %s", schedule.pk, schedule, exc)
            TestSchedule.objects.filter(pk=schedule.pk).update(next_run_at=None)
            continue
        with transaction.atomic():
            # The claim: only the tick whose update changes the row (next_run_at still the
            # value it read) goes on. It commits together with the run it starts, so a
            # crash in between leaves the occurrence due for the next tick.
            claimed = TestSchedule.objects.filter(
                pk=schedule.pk, is_enabled=True, next_run_at=schedule.next_run_at
            ).update(next_run_at=following, last_run_at=now)
            if not claimed:
                continue
            try:
                services.start_run(
                    None,
                    schedule.interface,
                    schedule.environment,
                    tag=schedule.tag,
                    schedule=schedule,
                )
            except services.RunAlreadyActive as exc:
                logger.info(
                    "schedule %s (%s) skipped an occurrence: %s", schedule.pk, schedule, exc
                )
                continue
        started += 1
    return started
