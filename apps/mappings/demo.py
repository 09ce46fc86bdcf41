"""Demo mapping: the partner's sales order (its OpenAPI response schema) to an SAP-style
sales order, with two lookup tables and two mapping tests. Version 1 is approved; version 2
is a draft that changes a few rows, so the version diff has something to show. Idempotent.
"""

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Team, User
from apps.catalog.models import ApiSpec, Interface
from apps.mappings.models import (
    FieldRule,
    LookupEntry,
    LookupTable,
    MappingSpec,
    MappingTest,
    SpecStatus,
)

NAME = "Partner order to SAP sales order"

TARGET_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "SalesOrder",
        "SalesOrderType",
        "SalesOrganization",
        "SoldToParty",
        "OverallStatus",
        "TransactionCurrency",
        "SalesOrderDate",
        "TotalNetAmount",
        "to_Item",
    ],
    "properties": {
        "SalesOrder": {"type": "string", "maxLength": 10},
        "SalesOrderType": {"type": "string", "enum": ["OR", "RE"]},
        "SalesOrganization": {"type": "string", "pattern": "^\\d{4}$"},
        "SoldToParty": {"type": "string", "pattern": "^\\d{10}$"},
        "OverallStatus": {"type": "string", "enum": ["A", "B", "C", "X"]},
        "TransactionCurrency": {"type": "string", "minLength": 3, "maxLength": 3},
        "SalesOrderDate": {"type": "string", "pattern": "^\\d{8}$"},
        "RequestedDeliveryDate": {"type": "string", "pattern": "^\\d{8}$"},
        "PurchaseOrderByCustomer": {"type": "string"},
        "TotalNetAmount": {"type": "number"},
        "TaxAmount": {"type": "number"},
        "TotalGrossAmount": {"type": "number"},
        "ChangedAtUTC": {"type": "string"},
        "to_Item": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["SalesOrderItem", "Material", "RequestedQuantity", "NetAmount"],
                "properties": {
                    "SalesOrderItem": {"type": "integer"},
                    "Material": {"type": "string", "maxLength": 18},
                    "MaterialText": {"type": "string", "maxLength": 40},
                    "RequestedQuantity": {"type": "integer", "minimum": 1},
                    "NetAmount": {"type": "number"},
                    "ProfitCenter": {"type": "string"},
                },
            },
        },
    },
}

LOOKUPS = {
    "sales-org-by-currency": (
        "SAP sales organisation that books orders in each currency.",
        {
            "EUR": "1010",
            "GBP": "1710",
            "USD": "1710",
            "CHF": "1310",
            "DKK": "1410",
            "SEK": "1410",
            "PLN": "1510",
        },
    ),
}

# target path, source paths, kind, params, required, target type, notes, example
ROWS = [
    ("SalesOrder", ["number"], "substring", {"start": 3}, True, "CHAR(10)", "Drop the SO- prefix.", "200562"),
    ("SalesOrderType", [], "constant", {"value": "OR"}, True, "CHAR(4)", "Standard order.", "OR"),
    ("SalesOrganization", ["currency"], "lookup", {"table": "sales-org-by-currency"}, True, "CHAR(4)", "", "1010"),
    ("SoldToParty", ["customer_id"], "expression", {"expression": 'substr("0000000000" & substr(customer_id, 2), len(customer_id) - 2)'}, True, "CHAR(10)", "SAP customer numbers are 10 digits.", "0000010042"),
    ("OverallStatus", ["status"], "code_map", {"map": {"pending": "A", "confirmed": "B", "shipped": "C", "delivered": "C", "cancelled": "X"}}, True, "CHAR(1)", "", "C"),
    ("TransactionCurrency", ["currency"], "copy", {}, True, "CUKY", "", "EUR"),
    ("SalesOrderDate", ["order_date"], "date_format", {"from": "iso_date", "to": "%Y%m%d"}, True, "DATS", "", "20241221"),
    ("RequestedDeliveryDate", ["requested_delivery_date"], "date_format", {"from": "iso_date", "to": "%Y%m%d"}, False, "DATS", "Left out when the partner sends none.", "20241230"),
    ("PurchaseOrderByCustomer", ["external_reference"], "trim", {}, False, "CHAR(35)", "", "PO-48213"),
    ("TotalNetAmount", ["subtotal"], "cast", {"to": "number"}, True, "CURR(15,2)", "", "6061.16"),
    ("TaxAmount", ["tax_amount"], "cast", {"to": "number"}, False, "CURR(15,2)", "", "1272.84"),
    ("TotalGrossAmount", ["total"], "cast", {"to": "number"}, False, "CURR(15,2)", "", "7334.00"),
    ("ChangedAtUTC", ["updated_at"], "date_format", {"from": "iso", "to": "iso", "to_tz": "UTC"}, False, "TIMESTAMP", "", "2024-12-22T09:27:49+00:00"),
    ("to_Item[*].SalesOrderItem", ["lines[*].line_number"], "arithmetic", {"op": "*", "operand": 10}, True, "NUMC(6)", "SAP items count in tens.", "10"),
    ("to_Item[*].Material", ["lines[*].sku"], "copy", {}, True, "CHAR(18)", "", "SKU-10050"),
    ("to_Item[*].MaterialText", ["lines[*].description"], "substring", {"length": 40}, False, "CHAR(40)", "", "Standard cable tray 3m"),
    ("to_Item[*].RequestedQuantity", ["lines[*].qty"], "copy", {}, True, "QUAN(13)", "", "1"),
    ("to_Item[*].NetAmount", ["lines[*].line_total"], "cast", {"to": "number"}, True, "CURR(15,2)", "", "19.90"),
]  # fmt: skip

# Version 2 also books each item to a profit centre and upper-cases the material text.
DRAFT_CHANGES = [
    ("to_Item[*].MaterialText", ["lines[*].description"], "expression", {"expression": "upper(substr(description, 0, 40))"}, False, "CHAR(40)", "Upper case, as SAP shows it.", "STANDARD CABLE TRAY 3M"),
    ("to_Item[*].ProfitCenter", ["lines[*].sku"], "conditional", {"cases": [{"matches": "^SKU-10", "then": "PC-CABLE"}, {"matches": "^SKU-11", "then": "PC-TRAY"}], "else": "PC-OTHER"}, False, "CHAR(10)", "", "PC-TRAY"),
]  # fmt: skip

SAMPLE_ORDER = {
    "number": "SO-200562",
    "customer_id": "C-10042",
    "status": "delivered",
    "currency": "EUR",
    "order_date": "2024-12-21",
    "requested_delivery_date": "2024-12-30",
    "external_reference": "PO-48213 ",
    "lines": [
        {
            "line_number": 1,
            "sku": "SKU-11050",
            "description": "Standard cable tray 3m",
            "qty": 4,
            "unit_price": "19.90",
            "line_total": "79.60",
        },
        {
            "line_number": 2,
            "sku": "SKU-10007",
            "description": "Cable tie, black, 200 mm (pack of 100)",
            "qty": 10,
            "unit_price": "3.50",
            "line_total": "35.00",
        },
    ],
    "subtotal": "114.60",
    "tax_rate": "0.21",
    "tax_amount": "24.07",
    "total": "138.67",
    "created_at": "2024-12-21T09:27:49+01:00",
    "updated_at": "2024-12-22T10:27:49+01:00",
}

SAMPLE_EXPECTED = {
    "SalesOrder": "200562",
    "SalesOrderType": "OR",
    "SalesOrganization": "1010",
    "SoldToParty": "0000010042",
    "OverallStatus": "C",
    "TransactionCurrency": "EUR",
    "SalesOrderDate": "20241221",
    "RequestedDeliveryDate": "20241230",
    "PurchaseOrderByCustomer": "PO-48213",
    "TotalNetAmount": 114.6,
    "TaxAmount": 24.07,
    "TotalGrossAmount": 138.67,
    "ChangedAtUTC": "2024-12-22T09:27:49+00:00",
    "to_Item": [
        {
            "SalesOrderItem": 10,
            "Material": "SKU-11050",
            "MaterialText": "Standard cable tray 3m",
            "RequestedQuantity": 4,
            "NetAmount": 79.6,
        },
        {
            "SalesOrderItem": 20,
            "Material": "SKU-10007",
            "MaterialText": "Cable tie, black, 200 mm (pack of 100)",
            "RequestedQuantity": 10,
            "NetAmount": 35.0,
        },
    ],
}


def _rule(spec, position, row) -> FieldRule:
    target, sources, kind, params, required, target_type, notes, example = row
    return FieldRule(
        spec=spec,
        position=position,
        target_path=target,
        source_paths=sources,
        kind=kind,
        params=params,
        required=required,
        target_type=target_type,
        notes=notes,
        example=example,
    )


def _tests(spec, *, draft: bool) -> list[MappingTest]:
    expected = SAMPLE_EXPECTED
    if draft:
        expected = {
            **SAMPLE_EXPECTED,
            "to_Item": [dict(item) for item in SAMPLE_EXPECTED["to_Item"]],
        }
        for item, centre in zip(expected["to_Item"], ("PC-TRAY", "PC-CABLE"), strict=True):
            item["MaterialText"] = item["MaterialText"].upper()
            item["ProfitCenter"] = centre
    no_delivery_date = {**SAMPLE_ORDER, "requested_delivery_date": None, "status": "pending"}
    no_delivery_expected = {**expected, "OverallStatus": "A"}
    no_delivery_expected.pop("RequestedDeliveryDate")
    return [
        MappingTest(
            spec=spec,
            name="delivered order with two lines",
            source_payload=SAMPLE_ORDER,
            expected_payload=expected,
        ),
        MappingTest(
            spec=spec,
            name="pending order without a delivery date",
            source_payload=no_delivery_date,
            expected_payload=no_delivery_expected,
        ),
    ]


def load(**_options) -> dict:
    interface = Interface.objects.filter(code="INT-002").first()
    if interface is None or MappingSpec.objects.filter(interface=interface, name=NAME).exists():
        return {}
    api_spec = ApiSpec.objects.filter(interface=interface).order_by("-version").first()
    lead = User.objects.filter(username="lead").first()
    team = Team.objects.filter(slug="erp-integration").first()
    with transaction.atomic():
        for name, (description, entries) in LOOKUPS.items():
            table, created = LookupTable.objects.get_or_create(
                name=name, defaults={"owner_team": team, "description": description}
            )
            if created:
                LookupEntry.objects.bulk_create(
                    LookupEntry(table=table, key=key, value=value) for key, value in entries.items()
                )
        sides = {
            "source_format": "json",
            "target_format": "json",
            "target_schema": TARGET_SCHEMA,
        }
        if api_spec is not None:
            sides.update(
                source_spec=api_spec,
                source_operation="GET /orders/{number}/",
                source_part="response",
                source_status="200",
            )
        approved = MappingSpec.objects.create(
            interface=interface,
            name=NAME,
            version=1,
            status=SpecStatus.APPROVED,
            description="The mapping sheet agreed with the SAP team for order intake.",
            approved_by=lead,
            approved_at=timezone.now(),
            updated_by=lead,
            **sides,
        )
        FieldRule.objects.bulk_create(_rule(approved, n, row) for n, row in enumerate(ROWS, 1))
        MappingTest.objects.bulk_create(_tests(approved, draft=False))

        draft = MappingSpec.objects.create(
            interface=interface,
            name=NAME,
            version=2,
            status=SpecStatus.DRAFT,
            description="Adds the profit centre per item.",
            based_on=approved,
            updated_by=lead,
            **sides,
        )
        changed = {row[0]: row for row in DRAFT_CHANGES}
        rows = [changed.pop(row[0], row) for row in ROWS] + list(changed.values())
        FieldRule.objects.bulk_create(_rule(draft, n, row) for n, row in enumerate(rows, 1))
        MappingTest.objects.bulk_create(_tests(draft, draft=True))
    return {}
