"""Deterministic demo data for the demo partner API (no database).

Everything is generated once per process from ``random.Random(SEED)``, so every
run, every worker and every test sees the same 240 customers, 600 orders and
500 invoices. Dates are relative to a fixed :data:`AS_OF` moment (not the clock),
so invoice statuses (paid/open/overdue) never drift.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

SEED = 20240115
CUSTOMER_COUNT = 240
ORDER_COUNT = 600
INVOICE_COUNT = 500
FIRST_CUSTOMER_NUMBER = 10001
FIRST_ORDER_NUMBER = 200001
AS_OF = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

SPEC_PATH = Path(__file__).with_name("openapi.yaml")

SEGMENTS = ("enterprise", "mid_market", "smb", "public_sector")
ORDER_STATUSES = ("pending", "confirmed", "shipped", "delivered", "cancelled")
INVOICE_STATUSES = ("paid", "open", "overdue")
CURRENCIES = ("CHF", "DKK", "EUR", "GBP", "PLN", "SEK", "USD")
PAYMENT_TERMS_DAYS = (14, 30, 45, 60)

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Country:
    code: str
    currency: str
    utc_offset_hours: int
    vat_rate: Decimal
    phone_prefix: str
    legal_suffix: str
    cities: tuple[tuple[str, str], ...]  # (city, postal code)
    streets: tuple[str, ...]
    number_first: bool  # "12 High Street" rather than "Hauptstraße 12"
    weight: int


COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country(
            "NL", "EUR", 1, Decimal("0.21"), "+31", "B.V.",
            (("Amsterdam", "1015 CJ"), ("Rotterdam", "3011 AD"), ("Utrecht", "3511 LX"),
             ("Eindhoven", "5611 EM")),
            ("Keizersgracht", "Coolsingel", "Oudegracht", "Stationsplein"), False, 24,
        ),
        Country(
            "DE", "EUR", 1, Decimal("0.19"), "+49", "GmbH",
            (("Berlin", "10115"), ("Hamburg", "20095"), ("München", "80331"), ("Köln", "50667")),
            ("Hauptstraße", "Industriestraße", "Bahnhofstraße", "Am Hafen"), False, 20,
        ),
        Country(
            "BE", "EUR", 1, Decimal("0.21"), "+32", "NV",
            (("Brussel", "1000"), ("Antwerpen", "2000"), ("Gent", "9000")),
            ("Meir", "Kouter", "Nieuwstraat"), False, 8,
        ),
        Country(
            "FR", "EUR", 1, Decimal("0.20"), "+33", "SAS",
            (("Paris", "75002"), ("Lyon", "69002"), ("Lille", "59000"), ("Toulouse", "31000")),
            ("rue de la République", "avenue Jean Jaurès", "boulevard Voltaire"), True, 9,
        ),
        Country(
            "GB", "GBP", 0, Decimal("0.20"), "+44", "Ltd",
            (("London", "EC1A 1BB"), ("Manchester", "M1 1AE"), ("Leeds", "LS1 4AP"),
             ("Bristol", "BS1 4DJ")),
            ("High Street", "Station Road", "Victoria Street"), True, 10,
        ),
        Country(
            "IE", "EUR", 0, Decimal("0.23"), "+353", "Ltd",
            (("Dublin", "D02 X285"), ("Cork", "T12 W8DR")),
            ("Main Street", "Grafton Street"), True, 3,
        ),
        Country(
            "US", "USD", -5, Decimal("0.00"), "+1", "Inc.",
            (("New York", "10001"), ("Chicago", "60601"), ("Boston", "02108")),
            ("Main Street", "Market Street", "Commerce Drive"), True, 8,
        ),
        Country(
            "ES", "EUR", 1, Decimal("0.21"), "+34", "S.L.",
            (("Madrid", "28013"), ("Barcelona", "08002"), ("Valencia", "46002")),
            ("Calle Mayor", "Gran Vía", "Avenida del Puerto"), False, 5,
        ),
        Country(
            "IT", "EUR", 1, Decimal("0.22"), "+39", "S.r.l.",
            (("Milano", "20121"), ("Roma", "00184"), ("Torino", "10121")),
            ("Via Roma", "Corso Italia", "Via Garibaldi"), False, 4,
        ),
        Country(
            "SE", "SEK", 1, Decimal("0.25"), "+46", "AB",
            (("Stockholm", "111 22"), ("Göteborg", "411 01"), ("Malmö", "211 20")),
            ("Drottninggatan", "Storgatan"), False, 3,
        ),
        Country(
            "DK", "DKK", 1, Decimal("0.25"), "+45", "ApS",
            (("København", "1050"), ("Aarhus", "8000")),
            ("Vesterbrogade", "Strøget"), False, 2,
        ),
        Country(
            "PL", "PLN", 1, Decimal("0.23"), "+48", "Sp. z o.o.",
            (("Warszawa", "00-001"), ("Kraków", "30-001"), ("Gdańsk", "80-001")),
            ("ul. Marszałkowska", "ul. Długa"), False, 2,
        ),
        Country(
            "CH", "CHF", 1, Decimal("0.081"), "+41", "AG",
            (("Zürich", "8001"), ("Basel", "4051"), ("Genève", "1201")),
            ("Bahnhofstrasse", "Rue du Rhône"), False, 1,
        ),
        Country(
            "AT", "EUR", 1, Decimal("0.20"), "+43", "GmbH",
            (("Wien", "1010"), ("Graz", "8010"), ("Linz", "4020")),
            ("Mariahilfer Straße", "Landstraße"), False, 1,
        ),
    )
}  # fmt: skip

_COMPANY_STEMS = (
    "Van Dijk", "Jansen", "Bakker", "Visser", "Müller", "Schmidt", "Fischer", "Weber",
    "Peeters", "Dubois", "Moreau", "Laurent", "Taylor", "Evans", "Murphy", "Johnson",
    "Hudson", "García", "Rossi", "Bianchi", "Andersson", "Nielsen", "Nowak", "Keller",
    "Huber", "Northwind", "Bluewater", "Ironbridge", "Greenfield", "Silverline",
    "Brightpath", "Harbor", "Summit", "Crescent", "Oakridge", "Lakeside",
)  # fmt: skip
_INDUSTRIES = (
    "Logistics", "Foods", "Retail", "Engineering", "Pharma", "Textiles", "Components",
    "Energy", "Automotive", "Packaging", "Electronics", "Hospitality", "Systems",
    "Agri", "Medical", "Furniture", "Chemicals", "Print",
)  # fmt: skip
_FIRST_NAMES = (
    "Anna", "Bram", "Sophie", "Lucas", "Emma", "Jonas", "Lea", "Noah", "Julia", "Finn",
    "Chloé", "Louis", "Olivia", "Jack", "Aoife", "Liam", "Sofia", "Marco", "Elsa",
    "Oskar", "Zofia", "Jakub", "Mia", "Felix", "Grace", "Daniel", "Nina", "Tomás",
)  # fmt: skip
_LAST_NAMES = (
    "de Vries", "Janssen", "Meijer", "Schneider", "Wagner", "Becker", "Martin", "Bernard",
    "Smith", "Jones", "Walsh", "Brown", "Miller", "López", "Ferrari", "Lindqvist",
    "Hansen", "Kowalski", "Brunner", "Gruber", "Claes", "O'Brien", "Sánchez", "Moretti",
)  # fmt: skip
_PRODUCT_ADJECTIVES = (
    "Standard",
    "Heavy-duty",
    "Compact",
    "Premium",
    "Eco",
    "Industrial",
    "Modular",
    "Basic",
)
_PRODUCT_NOUNS = (
    ("Pallet wrap 500mm", "18.90"),
    ("Cardboard box 40x30x20", "1.35"),
    ("Shipping label roll", "7.80"),
    ("Safety gloves (pair)", "4.25"),
    ("LED panel 60x60", "39.00"),
    ("Cable tray 3m", "22.40"),
    ("Hydraulic pump", "845.00"),
    ("Steel bracket", "3.10"),
    ("Thermal printer", "289.00"),
    ("Barcode scanner", "149.00"),
    ("Office chair", "219.00"),
    ("Coffee beans 1kg", "17.50"),
    ("Cleaning concentrate 5l", "26.90"),
    ("Laptop docking station", "179.00"),
    ("Conveyor belt segment", "1240.00"),
    ("Hi-vis vest", "6.95"),
)

_FIRST_CREATED = datetime(2019, 1, 1, tzinfo=UTC)
_LAST_CREATED = datetime(2024, 6, 30, tzinfo=UTC)
_FIRST_ORDER_DAY = date(2024, 1, 2)
_LAST_ORDER_DAY = date(2025, 1, 10)


@dataclass(frozen=True)
class Dataset:
    customers: tuple[dict, ...]
    orders: tuple[dict, ...]
    invoices: tuple[dict, ...]
    products: tuple[dict, ...]
    customers_by_id: dict[str, dict]
    orders_by_number: dict[str, dict]
    invoices_by_number: dict[str, dict]


def money(value: Decimal) -> str:
    """A decimal amount as a string with two decimals (``"1234.50"``)."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _ascii_slug(text: str, separator: str = "") -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = "".join(c if c.isalnum() else " " for c in plain.lower()).split()
    return separator.join(words)


def _timestamp(moment: datetime, offset_hours: int) -> str:
    zone = timezone(timedelta(hours=offset_hours))
    return moment.astimezone(zone).replace(microsecond=0).isoformat()


def _random_moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(seconds))


def _business_moment(rng: random.Random, day: date, offset_hours: int) -> datetime:
    """A moment during office hours (08:00–17:59 local) on ``day``, in UTC."""
    zone = timezone(timedelta(hours=offset_hours))
    local = datetime.combine(day, time(rng.randint(8, 17), rng.randrange(60), rng.randrange(60)))
    return local.replace(tzinfo=zone).astimezone(UTC)


def _vat_number(rng: random.Random, code: str) -> str | None:
    if code == "US":
        return None
    digits = f"{rng.randint(100000000, 999999999)}"
    return f"NL{digits}B01" if code == "NL" else f"{code}{digits}"


def _products(rng: random.Random) -> tuple[dict, ...]:
    products = []
    for index, (noun, base) in enumerate(_PRODUCT_NOUNS):
        for variant, adjective in enumerate(_PRODUCT_ADJECTIVES[: 2 + index % 3]):
            factor = Decimal(str(round(rng.uniform(0.85, 1.6), 2)))
            products.append(
                {
                    "sku": f"SKU-{10000 + index * 10 + variant}",
                    "description": f"{adjective} {noun[0].lower()}{noun[1:]}",
                    "unit_price": Decimal(base) * factor,
                }
            )
    return tuple(products)


def _customers(rng: random.Random) -> tuple[dict, ...]:
    codes = list(COUNTRIES)
    weights = [COUNTRIES[c].weight for c in codes]
    customers = []
    for index in range(CUSTOMER_COUNT):
        country = COUNTRIES[rng.choices(codes, weights)[0]]
        stem, industry = rng.choice(_COMPANY_STEMS), rng.choice(_INDUSTRIES)
        name = f"{stem} {industry} {country.legal_suffix}"
        domain = f"{_ascii_slug(stem)}-{_ascii_slug(industry)}.example"
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        city, postal_code = rng.choice(country.cities)
        street, house = rng.choice(country.streets), rng.randint(1, 240)
        created = _random_moment(rng, _FIRST_CREATED, _LAST_CREATED)
        updated = _random_moment(rng, created, AS_OF - timedelta(days=1))
        segment = rng.choices(SEGMENTS, (15, 35, 40, 10))[0]
        limit = {"enterprise": 250000, "mid_market": 75000, "smb": 15000, "public_sector": 100000}
        customers.append(
            {
                "id": f"C-{FIRST_CUSTOMER_NUMBER + index}",
                "name": name,
                "email": f"{_ascii_slug(first)}.{_ascii_slug(last)}@{domain}",
                "phone": (
                    f"{country.phone_prefix} {rng.randint(10, 99)} 555 {rng.randint(0, 9999):04d}"
                ),
                "contact_name": f"{first} {last}",
                "country": country.code,
                "segment": segment,
                "currency": country.currency,
                "vat_number": _vat_number(rng, country.code),
                "credit_limit": money(Decimal(limit[segment]) * rng.choice((1, 2, 4)) / 2),
                "payment_terms_days": rng.choices(PAYMENT_TERMS_DAYS, (10, 60, 15, 15))[0],
                "is_active": rng.random() > 0.07,
                "billing_address": {
                    "line1": f"{house} {street}" if country.number_first else f"{street} {house}",
                    "postal_code": postal_code,
                    "city": city,
                    "country": country.code,
                },
                "created_at": _timestamp(created, country.utc_offset_hours),
                "updated_at": _timestamp(updated, country.utc_offset_hours),
            }
        )
    return tuple(customers)


def order_totals(lines: list[dict], vat_rate: Decimal) -> dict:
    """Subtotal, tax and total of order lines whose prices are decimal strings."""
    subtotal = sum((Decimal(line["line_total"]) for line in lines), Decimal("0"))
    tax = (subtotal * vat_rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return {
        "subtotal": money(subtotal),
        "tax_rate": str(vat_rate),
        "tax_amount": money(tax),
        "total": money(subtotal + tax),
    }


def _order_status(rng: random.Random, order_day: date) -> str:
    age = (AS_OF.date() - order_day).days
    if age > 30:
        return rng.choices(("delivered", "cancelled"), (93, 7))[0]
    if age > 10:
        return rng.choices(("delivered", "shipped", "cancelled"), (60, 35, 5))[0]
    return rng.choices(("pending", "confirmed", "shipped"), (35, 45, 20))[0]


def _orders(rng, customers, products) -> tuple[dict, ...]:
    span = (_LAST_ORDER_DAY - _FIRST_ORDER_DAY).days
    drafts = []
    for _ in range(ORDER_COUNT):
        customer = rng.choice(customers)
        drafts.append((_FIRST_ORDER_DAY + timedelta(days=rng.randrange(span + 1)), customer))
    drafts.sort(key=lambda item: item[0])

    orders = []
    for index, (order_day, customer) in enumerate(drafts):
        country = COUNTRIES[customer["country"]]
        lines = []
        for line_number, product in enumerate(rng.sample(products, rng.randint(1, 5)), start=1):
            qty = rng.choice((1, 1, 2, 3, 5, 10, 12, 24, 50))
            unit_price = product["unit_price"].quantize(CENT, rounding=ROUND_HALF_UP)
            lines.append(
                {
                    "line_number": line_number,
                    "sku": product["sku"],
                    "description": product["description"],
                    "qty": qty,
                    "unit_price": money(unit_price),
                    "line_total": money(unit_price * qty),
                }
            )
        created = _business_moment(rng, order_day, country.utc_offset_hours)
        status = _order_status(rng, order_day)
        updated = min(created + timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 8)), AS_OF)
        orders.append(
            {
                "number": f"SO-{FIRST_ORDER_NUMBER + index}",
                "customer_id": customer["id"],
                "status": status,
                "currency": customer["currency"],
                "order_date": order_day.isoformat(),
                "requested_delivery_date": (
                    (order_day + timedelta(days=rng.randint(3, 21))).isoformat()
                    if rng.random() < 0.6
                    else None
                ),
                "external_reference": (
                    f"PO-{rng.randint(10000, 99999)}" if rng.random() < 0.7 else None
                ),
                "lines": lines,
                **order_totals(lines, country.vat_rate),
                "created_at": _timestamp(created, country.utc_offset_hours),
                "updated_at": _timestamp(updated, country.utc_offset_hours),
            }
        )
    return tuple(orders)


def _invoices(rng, customers_by_id, orders) -> tuple[dict, ...]:
    billable = [o for o in orders if o["status"] in ("confirmed", "shipped", "delivered")]
    chosen = sorted(rng.sample(billable, INVOICE_COUNT), key=lambda o: o["number"])
    drafts = []
    for order in chosen:
        customer = customers_by_id[order["customer_id"]]
        country = COUNTRIES[customer["country"]]
        issue_day = date.fromisoformat(order["order_date"]) + timedelta(days=rng.randint(0, 5))
        issue_day = min(issue_day, AS_OF.date())
        due_day = issue_day + timedelta(days=customer["payment_terms_days"])
        if due_day < AS_OF.date():
            status = rng.choices(("paid", "overdue"), (82, 18))[0]
        else:
            status = rng.choices(("paid", "open"), (30, 70))[0]
        total = Decimal(order["total"])
        paid_at = None
        if status == "paid":
            latest = min(datetime.combine(due_day, time(23, 59), tzinfo=UTC), AS_OF)
            earliest = datetime.combine(issue_day, time(9, 0), tzinfo=UTC)
            paid_at = _random_moment(rng, earliest, max(latest, earliest + timedelta(hours=1)))
        amount_paid = total if status == "paid" else Decimal("0")
        if status == "overdue" and rng.random() < 0.25:
            amount_paid = (total * Decimal("0.5")).quantize(CENT, rounding=ROUND_HALF_UP)
        created = _business_moment(rng, issue_day, country.utc_offset_hours)
        drafts.append(
            (
                issue_day,
                order["number"],
                {
                    "order_number": order["number"],
                    "customer_id": customer["id"],
                    "status": status,
                    "currency": order["currency"],
                    "issue_date": issue_day.isoformat(),
                    "due_date": due_day.isoformat(),
                    "subtotal": order["subtotal"],
                    "tax_amount": order["tax_amount"],
                    "total": order["total"],
                    "amount_paid": money(amount_paid),
                    "amount_due": money(total - amount_paid),
                    "paid_at": (_timestamp(paid_at, country.utc_offset_hours) if paid_at else None),
                    "created_at": _timestamp(created, country.utc_offset_hours),
                },
            )
        )
    drafts.sort(key=lambda item: (item[0], item[1]))
    invoices = []
    per_year: dict[int, int] = {}
    for issue_day, _, body in drafts:
        per_year[issue_day.year] = per_year.get(issue_day.year, 0) + 1
        invoices.append({"number": f"INV-{issue_day.year}-{per_year[issue_day.year]:05d}", **body})
    return tuple(invoices)


@cache
def dataset() -> Dataset:
    """The demo data set; built on first use and shared (treat it as read-only)."""
    rng = random.Random(SEED)
    products = _products(rng)
    customers = _customers(rng)
    customers_by_id = {c["id"]: c for c in customers}
    orders = _orders(rng, customers, products)
    invoices = _invoices(rng, customers_by_id, orders)
    return Dataset(
        customers=customers,
        orders=orders,
        invoices=invoices,
        products=tuple({**p, "unit_price": money(p["unit_price"])} for p in products),
        customers_by_id=customers_by_id,
        orders_by_number={o["number"]: o for o in orders},
        invoices_by_number={i["number"]: i for i in invoices},
    )
