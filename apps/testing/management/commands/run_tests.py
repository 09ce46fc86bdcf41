"""Runs an interface's test cases against an environment, for CI pipelines.

Runs in this process (no worker needed), prints one line per case, writes JUnit
XML when asked and exits 1 when a case failed or errored.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import User
from apps.catalog.models import Environment, Interface
from apps.core import jobs
from apps.core.models import JobStatus
from apps.testing import services
from apps.testing.junit import run_as_junit
from apps.testing.models import TestRun
from apps.testing.runner import run_suite


class Command(BaseCommand):
    help = "Runs the test cases of an interface against an environment; exits 1 on failure."

    def add_arguments(self, parser):
        parser.add_argument("--interface", required=True, help="Interface code, e.g. INT-042.")
        parser.add_argument("--env", required=True, help="Environment slug or name, e.g. uat.")
        parser.add_argument("--tag", default="", help="Only cases with this tag.")
        parser.add_argument("--junit", help="Write JUnit XML to this file.")
        parser.add_argument(
            "--as-user", default="", help="Run as this user (default: the first admin)."
        )

    def handle(self, *args, interface, env, tag, junit, as_user, **options):
        try:
            target = Interface.objects.get(code=interface.upper())
        except Interface.DoesNotExist:
            raise CommandError(f"No interface {interface}.")
        environment = (
            Environment.objects.filter(slug=env.lower()).first()
            or Environment.objects.filter(name__iexact=env).first()
        )
        if environment is None:
            raise CommandError(f"No environment {env}.")
        actor = (
            User.objects.filter(username=as_user).first()
            if as_user
            else User.objects.filter(role="admin", is_active=True).order_by("pk").first()
        )
        if actor is None:
            raise CommandError("No user to run as: pass --as-user.")
        try:
            run = services.start_run(actor, target, environment, tag=tag)
        except services.RunAlreadyActive as exc:
            raise CommandError(str(exc))
        outcome = jobs.execute(TestRun, run.pk, run_suite)
        run.refresh_from_db()
        for result in run.results.order_by("case_name"):
            line = f"{result.outcome.upper():8} {result.case_name}"
            if result.error:
                line += f"  ({result.error})"
            for check in result.checks:
                if check.get("passed") is False:
                    line += f"\n         ✗ {check['name']}: {check['message']}"
            self.stdout.write(line)
        self.stdout.write(
            f"{run.passed} passed, {run.failed} failed, {run.errored} errored — run #{run.pk} ({outcome})"
        )
        if junit:
            Path(junit).write_bytes(run_as_junit(run))
            self.stdout.write(f"JUnit XML written to {junit}")
        if run.status != JobStatus.SUCCEEDED:
            if run.error and not (run.passed or run.failed or run.errored):
                self.stderr.write(run.error)
            raise SystemExit(1)
