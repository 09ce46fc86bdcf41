"""Test-case and test-run operations shared by the API, the UI and the command line."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts import policy
from apps.catalog.models import Environment, Interface
from apps.core import audit, jobs
from apps.testing import checks
from apps.testing.models import TestCase, TestRun
from apps.testing.runner import request_path

BUILTIN_VARIABLES = {"base_url"}


class RunAlreadyActive(Exception):
    def __init__(self, run: TestRun):
        super().__init__(
            f"Run #{run.pk} of {run.interface.code} in {run.environment.name} is still {run.status}."
        )
        self.run = run


def validate_case(case: TestCase) -> None:
    """Refuses a case that could never run: bad assertions, undefined variables, unknown operation."""
    errors = {}
    for index, assertion in enumerate(case.assertions or []):
        try:
            checks.validate_assertion(assertion)
        except ValueError as exc:
            errors.setdefault("assertions", []).append(f"assertion {index + 1}: {exc}")
    used = set()
    for value in (case.path, case.query, case.headers, case.body):
        used |= checks.variables_in(value)
    undefined = sorted(used - set(case.variables or {}) - BUILTIN_VARIABLES)
    if undefined:
        errors["variables"] = f"Never defined: {', '.join(undefined)}."
    statuses = case.expected_statuses or []
    if not all(isinstance(code, int) and 100 <= code <= 599 for code in statuses):
        errors["expected_statuses"] = "Status codes are integers from 100 to 599."
    spec = case.interface.specs.order_by("-version").first() if case.interface_id else None
    if spec is not None and spec.kind.startswith("openapi") and "path" not in errors:
        path = request_path(case)
        if checks.find_operation(spec.document, case.method, path) is None:
            errors["path"] = f"{case.method} {path} is not an operation of spec v{spec.version}."
    if errors:
        raise ValidationError(errors)


def save_case(actor, case: TestCase) -> TestCase:
    validate_case(case)
    return audit.save_with_audit(actor, case)


def start_run(
    actor, interface: Interface, environment: Environment, *, tag: str = "", case_ids=()
) -> TestRun:
    """Queues a run; refuses a second active run of the same interface and environment."""
    policy.require_change(actor, interface)
    with transaction.atomic():
        # Lock the interface row: concurrent starts queue behind it and see the first run.
        Interface.objects.select_for_update().filter(pk=interface.pk).first()
        active = jobs.active_run(TestRun, interface=interface, environment=environment)
        if active:
            raise RunAlreadyActive(active)
        run = TestRun.objects.create(
            interface=interface,
            environment=environment,
            tag=tag,
            case_ids=list(case_ids),
            requested_by=actor if actor and actor.is_authenticated else None,
        )
        jobs.enqueue(run)
    return run
