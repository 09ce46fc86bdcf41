"""Demo test cases for the interfaces that point at the local demo partner API. Idempotent."""

from apps.catalog.models import Interface
from apps.testing.models import TestCase, TestKind

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
    return {}
