"""Defects raised from failed test results, prefilled from the evidence."""

from django.db import transaction

from apps.accounts import policy
from apps.core import audit
from apps.core.models import AuditAction
from apps.testing.models import Defect, Outcome, Phase, TestResult

PHASE_BY_ENVIRONMENT = {
    "dev": Phase.DEV,
    "test": Phase.SIT,
    "sit": Phase.SIT,
    "uat": Phase.UAT,
    "prod": Phase.PROD,
}
SAMPLE_CHARS = 4000


class NotAFailure(Exception):
    pass


def _sample(body):
    """A bounded piece of the (already masked) response body."""
    if isinstance(body, str):
        return body[:SAMPLE_CHARS]
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        return {**body, "results": body["results"][:2]}
    return body


def raise_from_result(
    actor, result: TestResult, *, severity: str = "medium", phase: str | None = None
) -> Defect:
    """Creates a defect from a failed or errored result, with expected and actual prefilled."""
    run = result.run
    policy.require_change(actor, run)
    if result.outcome == Outcome.PASSED:
        raise NotAFailure("This result passed: there is nothing to raise.")
    failed = [c for c in result.checks if c.get("passed") is False]
    expected = "\n".join(c["name"] for c in failed) or "the request succeeds"
    actual = (
        "\n".join(
            f"{c['name']}: {c['message']}" + "".join(f"\n  {d}" for d in c.get("details", []))
            for c in failed
        )
        or result.error
    )
    with transaction.atomic():
        defect = Defect.objects.create(
            interface=run.interface,
            result=result,
            title=f"{run.interface.code} {result.case_name}: {failed[0]['name'] if failed else 'errored'}"[
                :200
            ],
            severity=severity,
            phase_found=phase or PHASE_BY_ENVIRONMENT.get(run.environment.slug, Phase.SIT),
            correlation_id=result.correlation_id,
            expected=expected,
            actual=actual,
            payload_sample=_sample(result.response.get("body")),
            raised_by=actor,
        )
        audit.record(actor, defect, AuditAction.CREATE)
    return defect
