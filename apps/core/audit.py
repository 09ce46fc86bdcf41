"""The audit trail: snapshot an object before a change, record what differs after it.

Domain operations call ``snapshot`` before they change an object and
``record`` after, inside the same transaction, so a change and its audit entry
land together or not at all.
"""

from datetime import date, datetime
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.fields.files import FieldFile

from apps.core.models import AuditAction, AuditEntry
from apps.core.request_context import current_request_id

SECRET_CHANGED = "(changed)"  # noqa: S105 - a placeholder shown instead of secrets


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, FieldFile):
        return value.name or ""
    return value


def snapshot(instance: models.Model) -> dict:
    """The audited field values of an instance, as JSON-safe values.

    Foreign keys appear by their string form, many-to-many fields as sorted
    lists of names; fields listed in the model's ``AUDIT_SECRET_FIELDS`` appear
    only as a fingerprint so a change is visible but the value is not.
    """
    secret_fields = set(getattr(instance, "AUDIT_SECRET_FIELDS", ()))
    excluded = set(getattr(instance, "AUDIT_EXCLUDE_FIELDS", ())) | {"created_at", "updated_at"}
    values = {}
    for field in instance._meta.concrete_fields:
        if field.name in excluded or field.primary_key:
            continue
        if field.name in secret_fields:
            raw = field.value_from_object(instance)
            values[field.name] = f"#{hash(raw) & 0xFFFF:04x}" if raw else ""
        elif field.is_relation:
            values[field.name] = _plain(getattr(instance, field.name))
        else:
            values[field.name] = _plain(field.value_from_object(instance))
    if instance.pk:
        for field in instance._meta.many_to_many:
            if field.name not in excluded:
                values[field.name] = sorted(
                    str(item) for item in getattr(instance, field.name).all()
                )
    return values


def diff(before: dict, after: dict, secret_fields=()) -> dict:
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            if name in secret_fields:
                changes[name] = [SECRET_CHANGED, SECRET_CHANGED]
            else:
                changes[name] = [old, new]
    return changes


def record(
    actor,
    instance: models.Model,
    action: str,
    before: dict | None = None,
    *,
    also: dict | None = None,
) -> AuditEntry | None:
    """Writes one audit entry; an update that changed nothing writes none.

    ``also`` adds changes that are not fields of the object (``{"rows": [12, 40]}``).
    """
    secret_fields = set(getattr(instance, "AUDIT_SECRET_FIELDS", ()))
    if action == AuditAction.DELETE:
        changes = {
            name: [value, None]
            for name, value in (before or {}).items()
            if name not in secret_fields
        }
    else:
        after = snapshot(instance)
        changes = diff(before or {}, after, secret_fields)
        if action == AuditAction.CREATE:
            changes = {
                name: [None, pair[1]]
                for name, pair in changes.items()
                if pair[1] not in ("", None, [])
            }
        changes.update(also or {})
        if action == AuditAction.UPDATE and not changes:
            return None
    return AuditEntry.objects.create(
        content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
        object_id=str(instance.pk),
        object_repr=str(instance)[:200],
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_name=getattr(actor, "username", "") or "",
        changes=changes,
        request_id=current_request_id() if current_request_id() != "-" else "",
    )


def history_for(instance: models.Model):
    """Audit entries of one object, newest first."""
    return AuditEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
        object_id=str(instance.pk),
    ).select_related("actor")


def save_with_audit(actor, instance: models.Model, *, m2m: dict | None = None):
    """Validates and saves an object with its audit entry, in one transaction.

    ``m2m`` maps many-to-many field names to the values to set after saving.
    Raises ValidationError (nothing saved) when ``full_clean`` fails.
    """
    from django.db import transaction

    creating = instance._state.adding
    instance.full_clean()
    with transaction.atomic():
        before = {} if creating else snapshot(type(instance)._default_manager.get(pk=instance.pk))
        instance.save()
        for name, values in (m2m or {}).items():
            getattr(instance, name).set(values)
        record(actor, instance, AuditAction.CREATE if creating else AuditAction.UPDATE, before)
    return instance


def delete_with_audit(actor, instance: models.Model) -> None:
    """Deletes an object and records what it held; ProtectedError leaves both untouched."""
    from django.db import transaction

    with transaction.atomic():
        record(actor, instance, AuditAction.DELETE, snapshot(instance))
        instance.delete()
