from celery import shared_task

from apps.catalog.models import EndpointCheck
from apps.core import jobs


@shared_task(name="apps.catalog.tasks.check_endpoint")
def check_endpoint(check_id: int) -> str:
    """Runs one endpoint connectivity check. Idempotent: a second delivery is not claimed."""
    from apps.catalog.connectivity import run_check

    return jobs.execute(EndpointCheck, check_id, run_check)


jobs.register(EndpointCheck, lambda run_id: check_endpoint.delay(run_id))
