from celery import shared_task

from apps.core import jobs
from apps.reconciliation.models import ReconciliationRun


@shared_task(name="apps.reconciliation.tasks.run_reconciliation")
def run_reconciliation(run_id: int) -> str:
    """Runs one reconciliation run. Idempotent: a second delivery is not claimed, and a
    re-run reads both sides again from the start."""
    from apps.reconciliation.runner import run_job

    return jobs.execute(ReconciliationRun, run_id, run_job)


@shared_task(name="apps.reconciliation.tasks.run_due_reconciliations")
def run_due_reconciliations() -> str:
    """Beat, every minute: starts the runs of scheduled jobs that are due."""
    from apps.reconciliation import services

    return f"started {services.run_due_jobs()} scheduled reconciliation(s)"


jobs.register(ReconciliationRun, lambda run_id: run_reconciliation.delay(run_id))
