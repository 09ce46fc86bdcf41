"""Demo test cases for the interfaces that point at the local demo partner API. Idempotent."""

from django.utils import timezone

from apps.catalog.models import Environment, Interface
from apps.testing import schedules
from apps.testing.models import TestCase, TestKind, TestSchedule

CASES = [
    {
        "name": "list customers",
        "path": "customers/",
        "max_latency_ms": 2000,
        "assertions": [{"path": "$.count", "op": "type", "value": "integer"}],
    },
    {
        "name": "read one customer",
        "path": "customers/{{customer_id}}/",
        "variables": {"customer_id": "C-10001"},
        "assertions": [{"path": "$.id", "op": "equals", "value": "C-10001"}],
    },
    {
        "name": "open invoices",
        "path": "invoices/",
        "query": {"status": "open"},
        "assertions": [{"path": "$.results[*].status", "op": "equals", "value": "open"}],
    },
    {
        "name": "orders need a token",
        "path": "orders/",
        "kind": TestKind.NEGATIVE,
        "send_credentials": False,
        "expected_statuses": [401],
    },
    {
        "name": "create an order, then read its customer back",
        "method": "POST",
        "path": "orders/",
        "body": {
            "customer_id": "C-10001",
            "lines": [{"sku": "SKU-10001", "qty": 2, "unit_price": "19.90"}],
        },
        "expected_statuses": [201],
        "extract": {"customer": "$.customer_id"},
        "steps": [
            {
                "name": "read the customer",
                "path": "customers/{{customer}}/",
                "expected_statuses": [200],
                "assertions": [{"path": "$.id", "op": "equals", "value": "C-10001"}],
            }
        ],
    },
    {
        "name": "invoice PDF shows the VAT line",
        "kind": TestKind.MANUAL,
        "path": "",
        "manual_steps": "1. Open the partner portal.\n2. Download the PDF of invoice INV-2026-00001.",
        "expected_result": "The PDF shows the VAT rate and amount on their own line.",
    },
]


def load(**_options) -> dict:
    for code in ("INT-001", "INT-002"):
        interface = Interface.objects.filter(code=code).first()
        if interface is None:
            continue
        for fields in CASES:
            fields = dict(fields)
            name = fields.pop("name")
            TestCase.objects.get_or_create(interface=interface, name=name, defaults=fields)
    interface = Interface.objects.filter(code="INT-001").first()
    environment = Environment.objects.filter(slug="test").first()
    if interface and environment:
        cron = "0 2 * * *"
        TestSchedule.objects.get_or_create(
            interface=interface,
            name="nightly contract run",
            defaults={
                "environment": environment,
                "cron": cron,
                "next_run_at": schedules.next_occurrence(cron, timezone.now()),
            },
        )
    return {}
