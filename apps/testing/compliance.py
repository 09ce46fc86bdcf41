"""Contract compliance of an interface: does it keep the promises of its current spec?

Per environment with an endpoint: whether the latest run passed against the
current spec version, which operations no test case exercises, and two figures:

- coverage: documented responses (operation × status code) that a test case
  targets, over all documented responses;
- conformance: of those covered, the ones whose case passed in the latest run.
"""

from dataclasses import dataclass, field

from apps.catalog.models import Interface
from apps.core.models import JobStatus
from apps.testing import checks
from apps.testing.models import Outcome, TestCase, TestKind, TestRun
from apps.testing.runner import step_path, steps_of


@dataclass
class EnvironmentCompliance:
    environment: str
    latest_run_id: int | None
    latest_run_status: str | None
    passed_against_current_spec: bool
    covered: int
    conforming: int
    total: int

    @property
    def coverage(self) -> float | None:
        return round(self.covered / self.total, 4) if self.total else None

    @property
    def conformance(self) -> float | None:
        return round(self.conforming / self.covered, 4) if self.covered else None


@dataclass
class Compliance:
    interface: str
    spec_version: int | None
    operations_without_test: list[str] = field(default_factory=list)
    documented_responses: int = 0
    environments: list[EnvironmentCompliance] = field(default_factory=list)


def _case_targets(document: dict, cases: list[TestCase]) -> dict[int, set[tuple[str, str]]]:
    """For each case, the (operation key, status) pairs it targets."""
    targets = {}
    for case in cases:
        for step in steps_of(case):
            found = checks.find_operation(document, step.method, step_path(step, case))
            if not found:
                continue
            template, operation = found
            key = f"{step.method.upper()} {template}"
            documented = [str(code) for code in operation.get("responses", {})]
            if step.expected_statuses:
                statuses = [str(code) for code in step.expected_statuses if str(code) in documented]
            else:
                statuses = [code for code in documented if code.startswith("2")]
            targets.setdefault(case.pk, set()).update((key, status) for status in statuses)
    return targets


def compliance_of(interface: Interface) -> Compliance:
    spec = interface.specs.order_by("-version").first()
    result = Compliance(interface=interface.code, spec_version=spec.version if spec else None)
    pairs, targets, covered = set(), {}, set()
    contract = spec is not None and spec.kind.startswith("openapi")
    if contract:
        pairs = {
            (op["key"], str(code)) for op in spec.operations for code in op.get("status_codes", [])
        }
        result.documented_responses = len(pairs)
        cases = list(
            TestCase.objects.filter(interface=interface, is_active=True).exclude(
                kind=TestKind.MANUAL
            )
        )
        targets = _case_targets(spec.document, cases)
        covered = set().union(*targets.values()) & pairs if targets else set()
        tested_operations = {key for key, _status in covered}
        result.operations_without_test = sorted(
            op["key"] for op in spec.operations if op["key"] not in tested_operations
        )

    for endpoint in interface.endpoints.select_related("environment").order_by(
        "environment__position"
    ):
        latest = (
            TestRun.objects.filter(
                interface=interface, environment=endpoint.environment, is_manual=False
            )
            .exclude(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
            .order_by("-created_at")
            .first()
        )
        conforming = set()
        if contract and latest is not None and latest.spec_id == spec.pk:
            for case_id, outcome, status, steps in latest.results.values_list(
                "case_id", "outcome", "response__status", "steps"
            ):
                if outcome == Outcome.PASSED:
                    seen = {str(status)} | {
                        str(step.get("response", {}).get("status")) for step in steps or []
                    }
                    conforming |= {pair for pair in targets.get(case_id, ()) if pair[1] in seen}
        result.environments.append(
            EnvironmentCompliance(
                environment=endpoint.environment.name,
                latest_run_id=latest.pk if latest else None,
                latest_run_status=latest.status if latest else None,
                passed_against_current_spec=bool(
                    contract
                    and latest
                    and latest.spec_id == spec.pk
                    and latest.status == JobStatus.SUCCEEDED
                ),
                covered=len(covered),
                conforming=len(conforming & covered),
                total=len(pairs),
            )
        )
    return result


def as_dict(compliance: Compliance) -> dict:
    return {
        "interface": compliance.interface,
        "spec_version": compliance.spec_version,
        "documented_responses": compliance.documented_responses,
        "operations_without_test": compliance.operations_without_test,
        "environments": [
            {
                "environment": env.environment,
                "latest_run_id": env.latest_run_id,
                "latest_run_status": env.latest_run_status,
                "passed_against_current_spec": env.passed_against_current_spec,
                "covered": env.covered,
                "conforming": env.conforming,
                "total": env.total,
                "coverage": env.coverage,
                "conformance": env.conformance,
            }
            for env in compliance.environments
        ],
    }
