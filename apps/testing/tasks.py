from celery import shared_task

from apps.core import jobs
from apps.testing.models import TestRun


@shared_task(name="apps.testing.tasks.run_tests")
def run_tests(run_id: int) -> str:
    """Runs one test run. Idempotent: a second delivery is not claimed; a resumed run skips recorded cases."""
    from apps.testing.runner import run_suite

    return jobs.execute(TestRun, run_id, run_suite)


@shared_task(name="apps.testing.tasks.run_due_schedules")
def run_due_schedules() -> str:
    """Beat, every minute: starts the runs of due schedules. Safe twice: each occurrence is claimed once."""
    from apps.testing import schedules

    return f"started {schedules.run_due_schedules()} scheduled run(s)"


jobs.register(TestRun, lambda run_id: run_tests.delay(run_id))
