"""Runs a reconciliation job in this process, for pipelines and the command line.

Prints the figures, writes the difference report where asked, and exits 1 when the run
failed or its accuracy is below the job's target.
"""

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.core import jobs
from apps.core.models import JobStatus
from apps.reconciliation import services
from apps.reconciliation.models import ReconciliationJob, ReconciliationRun
from apps.reconciliation.runner import run_job


def find_job(reference: str) -> ReconciliationJob:
    """A job by id, or by "INTERFACE-CODE/job name"."""
    jobs_ = ReconciliationJob.objects.select_related("interface")
    if reference.isdigit():
        job = jobs_.filter(pk=int(reference)).first()
    else:
        code, _, name = reference.partition("/")
        job = jobs_.filter(interface__code=code.upper(), name=name).first()
    if job is None:
        raise CommandError(
            f'No reconciliation job {reference!r}: give its id or "INT-042/job name".'
        )
    return job


class Command(BaseCommand):
    help = "Runs a reconciliation job; exits 1 when it fails or misses its accuracy target."

    def add_arguments(self, parser):
        parser.add_argument("job", help='The job\'s id, or "INT-042/job name".')
        parser.add_argument("--report", help="Copy the difference report (CSV) to this file.")
        parser.add_argument(
            "--as-user", default="", help="Run as this user (default: the first admin)."
        )

    def handle(self, *args, job, report, as_user, **options):
        target = find_job(job)
        actor = (
            User.objects.filter(username=as_user).first()
            if as_user
            else User.objects.filter(role="admin", is_active=True).order_by("pk").first()
        )
        if actor is None:
            raise CommandError("No user to run as: pass --as-user.")
        try:
            run = services.start_run(actor, target)
        except services.RunAlreadyActive as exc:
            raise CommandError(str(exc))
        outcome = jobs.execute(ReconciliationRun, run.pk, run_job)
        run.refresh_from_db()
        write = self.stdout.write
        write(f"{target}: run #{run.pk} {outcome} ({run.strategy or 'not started'})")
        if run.accuracy is not None:
            write(f"  source rows           {run.source_rows:>12,}")
            write(f"  target rows           {run.target_rows:>12,}")
            write(f"  matched               {run.matched:>12,}")
            write(f"  mismatched            {run.mismatched:>12,}")
            for name, count in run.column_mismatches.items():
                write(f"    {name:<20}{count:>12,}")
            write(f"  missing in target     {run.missing_in_target:>12,}")
            write(f"  unexpected in target  {run.unexpected_in_target:>12,}")
            write(f"  duplicate keys        {run.duplicate_source_keys:>12,} source, "
                  f"{run.duplicate_target_keys:,} target")  # fmt: skip
            write(f"  accuracy              {run.accuracy}% (target {run.accuracy_target}%)")
        if report and run.report_file:
            shutil.copyfile(Path(settings.VAR_DIR) / run.report_file, report)
            write(f"Difference report written to {report}")
        if run.status != JobStatus.SUCCEEDED:
            self.stderr.write(run.error)
            raise SystemExit(1)
