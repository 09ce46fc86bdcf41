"""Test-case and test-run operations shared by the API, the UI and the command line."""

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.accounts import policy
from apps.catalog.models import Environment, Interface
from apps.core import audit, jobs
from apps.testing import checks, xml_bodies
from apps.testing.models import BodyFormat, HttpMethod, TestCase, TestKind, TestRun
from apps.testing.runner import STEP_KEYS, step_path, steps_of

BUILTIN_VARIABLES = {"base_url"}


class RunAlreadyActive(Exception):
    def __init__(self, run: TestRun):
        super().__init__(
            f"Run #{run.pk} of {run.interface.code} in {run.environment.name} is still {run.status}."
        )
        self.run = run


def validate_case(case: TestCase) -> None:
    """Refuses a case that could never run: bad assertions, undefined variables, unknown
    operation, malformed chained steps or XML bodies."""
    errors: dict[str, list[str] | str] = {}
    steps = case.steps if isinstance(case.steps, list) else None
    if steps is None:
        errors["steps"] = ["Steps are a list of step objects."]
        steps = []
    for index, step in enumerate(steps, start=2):
        if not isinstance(step, dict):
            errors.setdefault("steps", []).append(f"step {index}: must be an object")
            continue
        unknown = sorted(set(step) - STEP_KEYS)
        if unknown:
            errors.setdefault("steps", []).append(
                f"step {index}: unknown key(s) {', '.join(unknown)}; "
                f"use {', '.join(sorted(STEP_KEYS))}"
            )
        if not str(step.get("path") or "").strip():
            errors.setdefault("steps", []).append(f"step {index}: path is missing")
        method = str(step.get("method") or "GET").upper()
        if method not in HttpMethod.values:
            errors.setdefault("steps", []).append(f"step {index}: unknown method {method!r}")
        if step.get("body_format", BodyFormat.JSON) not in BodyFormat.values:
            errors.setdefault("steps", []).append(
                f"step {index}: body_format is one of {', '.join(BodyFormat.values)}"
            )
    if case.kind == TestKind.MANUAL:
        if not (case.manual_steps or "").strip():
            errors["manual_steps"] = "A manual case needs the steps a tester follows."
        if not (case.expected_result or "").strip():
            errors["expected_result"] = "A manual case needs the result that counts as a pass."
        if errors:
            raise ValidationError(errors)
        return

    defined = set(case.variables or {}) | BUILTIN_VARIABLES
    all_steps = steps_of(case) if "steps" not in errors else steps_of(case)[:1]
    for number, step in enumerate(all_steps, start=1):
        where = "" if number == 1 else f"step {number}: "
        field_of = (lambda name: name) if number == 1 else (lambda name: "steps")
        for index, assertion in enumerate(step.assertions or [], start=1):
            try:
                checks.validate_assertion(assertion)
            except ValueError as exc:
                errors.setdefault(field_of("assertions"), []).append(
                    f"{where}assertion {index}: {exc}"
                )
        if not isinstance(step.extract, dict) or not all(
            isinstance(name, str) and isinstance(path, str) for name, path in step.extract.items()
        ):
            errors.setdefault(field_of("extract"), []).append(
                f"{where}extract maps variable names to JSONPath (or xpath:) strings"
            )
            extracted = set()
        else:
            extracted = set(step.extract)
            for name, path in step.extract.items():
                try:
                    checks.validate_assertion({"path": path, "op": "exists"})
                except ValueError as exc:
                    errors.setdefault(field_of("extract"), []).append(
                        f"{where}extract {name}: {exc}"
                    )
        body = step.body if step.body_format == BodyFormat.JSON else step.body_text
        used = set()
        for value in (step.path, step.query, step.headers, body):
            used |= checks.variables_in(value)
        undefined = sorted(used - defined)
        if undefined:
            errors.setdefault("variables", []).append(
                f"{where}never defined: {', '.join(undefined)}."
            )
        if step.body_format == BodyFormat.XML and step.body_text.strip():
            # Placeholders are filled at run time; check the shape with them blanked out.
            try:
                xml_bodies.parse(checks.PLACEHOLDER.sub("x", step.body_text))
            except xml_bodies.XmlProblem as exc:
                errors.setdefault(field_of("body_text"), []).append(f"{where}{exc}")
        statuses = step.expected_statuses or []
        if not all(isinstance(code, int) and 100 <= code <= 599 for code in statuses):
            errors.setdefault(field_of("expected_statuses"), []).append(
                f"{where}status codes are integers from 100 to 599."
            )
        defined |= extracted

    spec = case.interface.specs.order_by("-version").first() if case.interface_id else None
    if spec is not None and spec.kind.startswith("openapi") and "path" not in errors:
        for number, step in enumerate(all_steps, start=1):
            path = step_path(step, case)
            if checks.find_operation(spec.document, step.method, path) is None:
                field = "path" if number == 1 else "steps"
                where = "" if number == 1 else f"step {number}: "
                errors.setdefault(field, []).append(
                    f"{where}{step.method} {path} is not an operation of spec v{spec.version}."
                )
    if errors:
        raise ValidationError(
            {
                field: " ".join(messages) if isinstance(messages, list) else messages
                for field, messages in errors.items()
            }
        )


def save_case(actor, case: TestCase) -> TestCase:
    validate_case(case)
    return audit.save_with_audit(actor, case)


def start_run(
    actor,
    interface: Interface,
    environment: Environment,
    *,
    tag: str = "",
    case_ids=(),
    schedule=None,
) -> TestRun:
    """Queues a run; refuses a second active run of the same interface and environment.

    A run started by a ``schedule`` may have no actor (the scheduler itself): the
    schedule's owners were checked when it was saved. Any other run needs an actor
    who may change the interface.
    """
    if actor is not None or schedule is None:
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
            schedule=schedule,
        )
        jobs.enqueue(run)
    return run
