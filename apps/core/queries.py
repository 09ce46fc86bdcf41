"""Query helpers shared across apps."""

from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def related_count(model, field: str):
    """The number of ``model`` rows whose ``field`` points at the outer row.

    A correlated subquery, so it is computed for the rows of the page only,
    where a JOIN with COUNT(DISTINCT) would multiply every row of the table.
    """
    counted = (
        model.objects.filter(**{field: OuterRef("pk")})
        .order_by()
        .values(field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
