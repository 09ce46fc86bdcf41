"""The demo reconciliation job runs on its two SQLite databases and finds exactly the
differences the demo data holds (and none of the rows only written differently)."""

import pytest
from django.core.management import call_command

from apps.core import jobs
from apps.reconciliation import services
from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
from apps.reconciliation.runner import run_job

pytestmark = pytest.mark.django_db


def test_the_demo_job_finds_the_planted_differences(settings, tmp_path):
    settings.PONTIS_RECON_SQLITE_DIR = str(tmp_path)
    call_command("load_demo", verbosity=0)
    call_command("load_demo", verbosity=0)  # idempotent
    job = ReconciliationJob.objects.get()
    run = services.start_run(None, job, scheduled=True)
    jobs.execute(ReconciliationRun, run.pk, run_job)
    run.refresh_from_db()
    assert (run.source_rows, run.target_rows) == (500, 497)
    assert (run.missing_in_target, run.unexpected_in_target, run.duplicates) == (5, 1, 1)
    assert run.mismatched == 12
    assert run.column_mismatches == {"amount": 9, "booked_at": 0, "status": 3}
    assert run.matched == 482 and str(run.accuracy) == "96.400"
    assert run.met_target is False
