"""Demo reconciliation: orders in the ERP against the orders the CRM received, as two
SQLite databases under PONTIS_RECON_SQLITE_DIR. The target misses a few orders, holds one it
should not, one twice, and a few changed amounts and statuses, next to rows that are only
written differently (12.30 vs 12.3, another time zone offset), which must not count.
Idempotent."""

import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from django.db import transaction

from apps.accounts.models import Team
from apps.catalog.models import Interface
from apps.reconciliation.models import DataSource, ReconciliationJob, SourceKind
from apps.reconciliation.readers.sql import sqlite_dir

ORDERS = 500
JOB_NAME = "Orders: ERP to CRM"


def _rows(seed: int = 7) -> tuple[list[tuple], list[tuple]]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    source = []
    for n in range(1, ORDERS + 1):
        amount = Decimal(rng.randint(100, 500_000)) / 100
        booked = start + timedelta(minutes=37 * n)
        status = rng.choice(["open", "confirmed", "shipped", "invoiced"])
        source.append((f"SO-{200000 + n}", str(amount), booked.isoformat(), status))
    target = []
    cet = timezone(timedelta(hours=1))
    for index, (number, amount, booked, status) in enumerate(source):
        n = index + 1
        if n % 97 == 0:
            continue  # missing in the CRM
        if n % 50 == 0:
            amount = str(Decimal(amount) + Decimal("0.01"))  # changed
        elif n % 5 == 0:
            amount = f"{Decimal(amount):.4f}"  # 12.3000: equal by value
        if n % 133 == 0:
            status = "cancelled"  # changed
        if n % 7 == 0:
            booked = datetime.fromisoformat(booked).astimezone(cet).isoformat()  # same instant
        target.append((number, amount, booked, status.upper() if n % 11 == 0 else status))
        if n == 250:
            target.append((number, amount, booked, status))  # sent twice
    target.append(("SO-299999", "10.00", start.isoformat(), "open"))  # not in the ERP
    return source, target


def _write(path: Path, rows: list[tuple]) -> None:
    if path.exists():
        return
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "create table orders (order_number text, amount numeric, booked_at text, status text)"
        )
        connection.executemany("insert into orders values (?, ?, ?, ?)", rows)
    connection.close()


def load(**_options) -> dict:
    interface = Interface.objects.filter(code="INT-002").first()
    team = Team.objects.filter(slug="erp-integration").first()
    if interface is None or team is None:
        return {}
    if ReconciliationJob.objects.filter(interface=interface, name=JOB_NAME).exists():
        return {}
    folder = sqlite_dir()
    folder.mkdir(parents=True, exist_ok=True)
    source_rows, target_rows = _rows()
    _write(folder / "demo_erp_orders.db", source_rows)
    _write(folder / "demo_crm_orders.db", target_rows)
    with transaction.atomic():
        erp, _ = DataSource.objects.get_or_create(
            owner_team=team,
            name="ERP orders (demo SQLite)",
            defaults={
                "kind": SourceKind.SQLITE,
                "dsn": f"sqlite:///{folder / 'demo_erp_orders.db'}",
                "description": "Sales orders as the ERP booked them.",
            },
        )
        crm, _ = DataSource.objects.get_or_create(
            owner_team=team,
            name="CRM orders (demo SQLite)",
            defaults={
                "kind": SourceKind.SQLITE,
                "dsn": f"sqlite:///{folder / 'demo_crm_orders.db'}",
                "description": "Sales orders as the CRM received them.",
            },
        )
        ReconciliationJob.objects.create(
            interface=interface,
            name=JOB_NAME,
            description="Did every order booked in the ERP arrive in the CRM, once and unchanged?",
            source=erp,
            source_dataset="orders",
            target=crm,
            target_dataset="orders",
            key_columns=["order_number"],
            compare_columns=["amount", "booked_at", "status"],
            normalisation={
                "amount": {"type": "number"},
                "booked_at": {"type": "datetime"},
                "status": {"case_insensitive": True},
            },
        )
    return {}
