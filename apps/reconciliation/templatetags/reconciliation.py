"""Template helpers of the reconciliation pages, and the Reconciliation panel of an
interface's page (so the catalog's view needs to know nothing of reconciliation)."""

from decimal import Decimal

from django import template

from apps.accounts import policy
from apps.reconciliation.trend import percent_text

register = template.Library()


@register.filter
def percent(value) -> str:
    """``Decimal("99.500")`` -> ``99.5%``; empty for no value."""
    if value in (None, ""):
        return ""
    return percent_text(Decimal(str(value)))


@register.inclusion_tag("reconciliation/partials/interface_panel.html", takes_context=True)
def reconciliation_panel(context, interface):
    """The interface's jobs with their last run and latest accuracy: one query."""
    from apps.reconciliation.job_views import with_latest_run

    jobs = with_latest_run(
        interface.reconciliation_jobs.only("id", "name", "accuracy_target", "interface_id")
    ).order_by("name")
    user = context["request"].user
    return {"interface": interface, "jobs": jobs, "can_change": policy.can_change(user, interface)}


@register.filter
def as_compact_json(value) -> str:
    """One-line JSON (escaped by the template like any text)."""
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@register.filter
def thousands(value) -> str:
    """``1234567`` -> ``1,234,567``."""
    if value in (None, ""):
        return ""
    return f"{int(value):,}"
