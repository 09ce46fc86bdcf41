"""Catalog operations shared by the browser UI, the REST API and the demo loader.

Each function owns its transaction and its audit entry, and raises Django's
ValidationError (field → message) on bad input, which the API turns into a 400
problem and the UI into form errors.
"""

import hashlib
from dataclasses import asdict

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.accounts import policy
from apps.catalog import specs
from apps.catalog.models import CREDENTIAL_FIELDS, ApiSpec, Endpoint, EndpointCheck, Interface
from apps.core import audit, egress, jobs
from apps.core.models import AuditAction

save_audited = audit.save_with_audit
delete_audited = audit.delete_with_audit


def check_endpoint_url(endpoint: Endpoint) -> None:
    """Refuses a base URL (or token URL) the egress door would refuse in this environment."""
    allowlist = endpoint.environment.egress_allowlist if endpoint.environment_id else []
    for field in ("base_url", "token_url"):
        url = getattr(endpoint, field)
        if not url:
            continue
        try:
            egress.check_url(url, allowlist=allowlist)
        except egress.EgressError as exc:
            raise ValidationError({field: exc.message})


def save_endpoint(actor, endpoint: Endpoint, credentials: dict | None = None) -> Endpoint:
    """Saves an endpoint; ``credentials`` (when given) replaces the stored ones.

    Only the fields the auth type takes are kept; switching to an auth type
    that takes none clears the stored credentials.
    """
    check_endpoint_url(endpoint)
    allowed = CREDENTIAL_FIELDS[endpoint.auth_type]
    if credentials is not None:
        unknown = sorted(set(credentials) - set(allowed))
        if unknown:
            raise ValidationError(
                {
                    "credentials": f"{endpoint.get_auth_type_display()} takes {', '.join(allowed) or 'no credentials'}; "
                    f"not {', '.join(unknown)}."
                }
            )
        endpoint.set_credentials({name: credentials.get(name) for name in allowed})
    elif set(endpoint.credential_fields_set) - set(allowed):
        # The auth type changed: keep only what the new one takes.
        stored = endpoint.get_credentials()
        endpoint.set_credentials({name: stored.get(name) for name in allowed})
    try:
        return save_audited(actor, endpoint)
    except IntegrityError:
        raise ValidationError(
            {"environment": "This interface already has an endpoint in that environment."}
        )


def upload_spec(
    actor, interface: Interface, raw: bytes | str, *, filename: str = "", notes: str = ""
) -> ApiSpec:
    """Validates a spec document and stores it as the interface's next version.

    Raises ValidationError with one message per problem, each naming its JSON
    path; nothing is saved then. Uploading the same content as the latest
    version is refused as a no-op.
    """
    try:
        document = specs.load_document(raw, filename=filename or None)
        summary = specs.validate_spec(document)
        operations = specs.list_operations(summary.kind, document)
    except specs.SpecError as exc:
        raise ValidationError(
            {"content": [f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems]}
        )
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    digest = hashlib.sha256(text.encode()).hexdigest()
    with transaction.atomic():
        # Lock the interface row so two uploads do not take the same version number.
        Interface.objects.select_for_update().filter(pk=interface.pk).first()
        latest = interface.specs.order_by("-version").first()
        if latest and latest.content_sha256 == digest:
            raise ValidationError(
                {"content": f"This is the same document as version {latest.version}."}
            )
        next_version = (interface.specs.aggregate(v=Max("version"))["v"] or 0) + 1
        spec = ApiSpec.objects.create(
            interface=interface,
            version=next_version,
            label=(summary.api_version or "")[:60],
            kind=summary.kind,
            spec_version=summary.version,
            title=(summary.title or "")[:200],
            filename=filename[:200],
            content=text,
            document=document,
            operations=[asdict(op) for op in operations],
            operation_count=len(operations),
            content_sha256=digest,
            notes=notes[:300],
            uploaded_by=actor if actor and actor.is_authenticated else None,
        )
        audit.record(actor, spec, AuditAction.CREATE)
    return spec


def diff_spec_versions(old: ApiSpec, new: ApiSpec) -> specs.SpecDiff:
    return specs.diff_specs(old.document, new.document)


def request_endpoint_check(actor, endpoint: Endpoint) -> EndpointCheck:
    """Queues a connectivity check of an endpoint; an active one is returned instead of a second."""
    policy.require_change(actor, endpoint)
    with transaction.atomic():
        active = jobs.active_run(EndpointCheck, endpoint=endpoint)
        if active:
            return active
        check = EndpointCheck.objects.create(endpoint=endpoint, requested_by=actor)
        jobs.enqueue(check)
    return check
