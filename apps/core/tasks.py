from celery import shared_task

from apps.core import jobs


@shared_task
def reap_stale_jobs() -> str:
    """Periodic: re-queues or fails runs whose worker stopped sending heartbeats. Idempotent."""
    outcome = jobs.reap_stale()
    return f"requeued={outcome['requeued']} failed={outcome['failed']} resent={outcome['resent']}"
