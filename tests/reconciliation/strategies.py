"""Hypothesis strategies: two datasets with random duplicates, NULLs, missing and extra
keys, and changes — including changes that are equal by value (12.30 vs 12.3, the same
instant at another offset, trailing spaces)."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from apps.reconciliation.compare import Plan

PLAN = Plan.build(
    ["id", "line"],
    ["amount", "booked_at", "name", "active", "day"],
    mapping={"id": "order_id", "amount": "total"},
    normalisation={
        "id": {"type": "integer"},
        "line": {"type": "text"},
        "amount": {"type": "number"},
        "booked_at": {"type": "datetime"},
        "name": {"type": "text", "empty_is_null": True},
        "active": {"type": "boolean"},
        "day": {"type": "date"},
    },
)

amounts = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)
offsets = st.sampled_from([0, 60, -300, 330, 600]).map(lambda m: timezone(timedelta(minutes=m)))
names = st.one_of(st.none(), st.text(alphabet="ab ", max_size=4))


@st.composite
def row(draw, key):
    return {
        "id": key[0],
        "line": key[1],
        "amount": draw(st.one_of(st.none(), amounts)),
        "booked_at": draw(st.one_of(st.none(), instants)),
        "name": draw(names),
        "active": draw(st.one_of(st.none(), st.booleans())),
        "day": draw(
            st.one_of(
                st.none(),
                st.dates(
                    min_value=datetime(2020, 1, 1).date(), max_value=datetime(2021, 1, 1).date()
                ),
            )
        ),
    }


def as_source(values: dict) -> tuple:
    return (
        values["id"],
        values["line"],
        values["amount"],
        values["booked_at"],
        values["name"],
        values["active"],
        values["day"],
    )


@st.composite
def equal_by_value(draw, values: dict) -> tuple:
    """The same record as another system may write it."""
    amount = values["amount"]
    if amount is not None and draw(st.booleans()):
        amount = str(amount.normalize()) if draw(st.booleans()) else f"{amount:.4f}"
    booked = values["booked_at"]
    if booked is not None and draw(st.booleans()):
        booked = booked.astimezone(draw(offsets))
        if draw(st.booleans()):
            booked = booked.isoformat()
    name = values["name"]
    if name is not None and draw(st.booleans()):
        name = name + "  "
    if name == "" and draw(st.booleans()):
        name = None
    active = values["active"]
    if active is not None and draw(st.booleans()):
        active = draw(st.sampled_from(["t", "yes", "1"] if active else ["f", "no", "0"]))
    key = values["id"]
    if key is not None and draw(st.booleans()):
        key = str(key)
    day = values["day"]
    if day is not None and draw(st.booleans()):
        day = day.isoformat()
    return (key, values["line"], amount, booked, name, active, day)


@st.composite
def datasets(draw, max_keys=30):
    keys = draw(
        st.lists(
            st.tuples(
                st.one_of(st.none(), st.integers(0, 40)),
                st.sampled_from(["a", "b", None]),
            ),
            max_size=max_keys,
            unique=True,
        )
    )
    source, target = [], []
    for key in keys:
        values = draw(row(key))
        place = draw(st.sampled_from(["both", "both", "both", "source", "target"]))
        for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
            if place in ("both", "source"):
                source.append(as_source(values))
        for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):
            if place in ("both", "target"):
                if draw(st.booleans()):
                    target.append(as_source(draw(row(key))))  # a changed row
                else:
                    target.append(draw(equal_by_value(values)))
    source = draw(st.permutations(source))
    target = draw(st.permutations(target))
    return source, target
