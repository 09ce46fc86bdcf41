"""An interface's baseline of known findings: accepted failures that no longer turn a run red.

A lead of the interface's owning team (or an admin) accepts a failure with a reason and,
optionally, an end date; from then on the runner reports a matching failing check as a
known finding instead of a failure. Revoking deletes the finding; the audit trail keeps
what it held. The UI and the API both call the functions here.
"""

from datetime import date

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import Role
from apps.catalog.models import Interface
from apps.core import audit
from apps.testing import checks
from apps.testing.models import KnownFinding, TestCase, TestResult

# The named checks a finding can cover; a failed assertion's own name ("assert $.id exists")
# is accepted too, since each assertion is a check of its own.
CHECK_NAMES = [
    checks.STATUS_CODE,
    checks.CONTENT_TYPE,
    checks.RESPONSE_HEADERS,
    checks.RESPONSE_SCHEMA,
    checks.NOT_SERVER_ERROR,
    checks.MAX_LATENCY,
    checks.INVALID_INPUT_REJECTED,
    checks.NO_CREDENTIALS_REJECTED,
]
ASSERTION_PREFIX = "assert "

CONTAINS_MAX_CHARS = KnownFinding._meta.get_field("contains").max_length
CHECK_NAME_MAX_CHARS = KnownFinding._meta.get_field("check_name").max_length

REFUSAL = (
    "Only leads of the interface's owning team and admins may accept or revoke known findings."
)


def is_check_name(name: str) -> bool:
    return name in CHECK_NAMES or (
        name.startswith(ASSERTION_PREFIX) and len(name) <= CHECK_NAME_MAX_CHARS
    )


def can_manage_findings(user, interface: Interface) -> bool:
    """Leads of the owning team and admins; engineers and viewers may only read the baseline."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_portal_admin:
        return True
    return user.role == Role.LEAD and interface.owner_team_id in user.team_ids()


def may_manage_any_findings(user) -> bool:
    """Whether the role could manage some interface's findings: refuses others before any lookup."""
    return bool(user and user.is_authenticated and (user.is_portal_admin or user.role == Role.LEAD))


def require_manage_findings(user, interface: Interface) -> None:
    if not can_manage_findings(user, interface):
        raise PermissionDenied(REFUSAL)


def is_active(finding: KnownFinding, today: date) -> bool:
    """Active through its ``expires_on`` day; after it the failure counts again."""
    return finding.expires_on is None or finding.expires_on >= today


def active_findings(interface: Interface, today: date | None = None):
    """The findings of an interface that apply today, newest first."""
    today = today or timezone.localdate()
    return (
        KnownFinding.objects.filter(interface=interface)
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today))
        .select_related("case", "accepted_by")
        .order_by("-created_at", "-pk")
    )


def validate_finding(
    *,
    interface: Interface,
    case: TestCase | None,
    check_name: str,
    contains: str,
    reason: str,
    expires_on: date | None,
    today: date,
) -> None:
    """Raises a ValidationError naming every field that is wrong."""
    errors = {}
    if case is not None and case.interface_id != interface.pk:
        errors["case"] = f"{case.name} is not a test case of {interface.code}."
    if check_name and not is_check_name(check_name):
        errors["check_name"] = f"{check_name!r} is not a check name."
    if len(contains) > CONTAINS_MAX_CHARS:
        errors["contains"] = f"At most {CONTAINS_MAX_CHARS} characters."
    if not reason.strip():
        errors["reason"] = "Say why this failure is accepted."
    if expires_on is not None and expires_on <= today:
        errors["expires_on"] = "The end date must be in the future."
    if not errors and case is None and not check_name and not contains:
        errors["__all__"] = (
            "Name a case, a check or a text to look for: an empty finding would accept every failure."
        )
    if errors:
        raise ValidationError(errors)


def accept_finding(
    actor,
    *,
    interface: Interface,
    reason: str,
    case: TestCase | None = None,
    check_name: str = "",
    contains: str = "",
    expires_on: date | None = None,
    today: date | None = None,
) -> KnownFinding:
    """Adds a finding to the interface's baseline, accepted by ``actor``, with its audit entry.

    Not idempotent: accepting the same failure twice adds two findings. Raises
    PermissionDenied or ValidationError and saves nothing when refused.
    """
    require_manage_findings(actor, interface)
    contains = contains.strip()
    validate_finding(
        interface=interface,
        case=case,
        check_name=check_name,
        contains=contains,
        reason=reason,
        expires_on=expires_on,
        today=today or timezone.localdate(),
    )
    finding = KnownFinding(
        interface=interface,
        case=case,
        check_name=check_name,
        contains=contains,
        reason=reason.strip(),
        expires_on=expires_on,
        accepted_by=actor,
    )
    return audit.save_with_audit(actor, finding)


def revoke_finding(actor, finding: KnownFinding) -> None:
    """Deletes a finding with an audit entry: the failure it covered counts again from the next run."""
    require_manage_findings(actor, finding.interface)
    audit.delete_with_audit(actor, finding)


def first_violation(check: dict) -> str:
    """What a failing check says first: its first violation (schema, headers, assertions) or its message."""
    details = check.get("details") or []
    first = details[0] if details else None
    if isinstance(first, dict):
        first = first.get("message")
    text = str(first) if first else str(check.get("message") or "")
    return text[:CONTAINS_MAX_CHARS]


def prefill_from_check(result: TestResult, index: int) -> dict:
    """Form values for accepting the ``index``-th check of a result; empty when it did not fail."""
    try:
        check = result.checks[index]
    except (IndexError, TypeError):
        return {}
    if not isinstance(check, dict) or check.get("passed") is not False:
        return {}
    name = str(check.get("name") or "")
    return {
        "case": result.case_id,
        "check_name": name if is_check_name(name) else "",
        "contains": first_violation(check),
    }
