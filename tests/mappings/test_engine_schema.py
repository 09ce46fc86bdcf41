"""Source and target schemas: inline or taken from a registered spec's operation, and the
target schema's report on the output, each violation naming its path and the row."""

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from apps.catalog import services as catalog_services
from apps.mappings import engine, schemas
from apps.mappings.models import FieldRule, MappingSpec

FIXTURES = Path(__file__).parent.parent / "catalog" / "fixtures"

ERP_API = {
    "openapi": "3.0.3",
    "info": {"title": "ERP orders", "version": "1.0.0"},
    "paths": {
        "/orders": {
            "post": {
                "operationId": "createOrder",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Order"}}
                    }
                },
                "responses": {
                    "201": {
                        "description": "accepted",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}
                        },
                    },
                    "400": {"description": "refused"},
                },
            }
        }
    },
    "components": {
        "schemas": {
            "Order": {
                "type": "object",
                "required": ["orderNumber", "items"],
                "additionalProperties": False,
                "properties": {
                    "orderNumber": {"type": "string"},
                    "orderDate": {"type": "string", "format": "date"},
                    "customerId": {"type": "string", "nullable": True},
                    "items": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"$ref": "#/components/schemas/Item"},
                    },
                },
            },
            "Item": {
                "type": "object",
                "required": ["code", "quantity"],
                "properties": {
                    "code": {"type": "string", "maxLength": 5},
                    "quantity": {"type": "integer", "minimum": 1},
                },
            },
            "Receipt": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "status": {"type": "string", "enum": ["accepted", "rejected"]},
                },
            },
        }
    },
}

SHOP_ORDER = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "placed": {"type": "string"},
        "customer": {"type": ["string", "null"]},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "string"}},
            },
        },
    },
}


@pytest.fixture
def erp_spec(engineer, interface_a):
    return catalog_services.upload_spec(
        engineer, interface_a, json.dumps(ERP_API), filename="erp.json"
    )


@pytest.fixture
def mapping(db, interface_a, erp_spec):
    spec = MappingSpec.objects.create(
        interface=interface_a,
        name="Shop order to ERP order",
        source_schema=SHOP_ORDER,
        target_spec=erp_spec,
        target_operation="POST /orders",
        target_part="request",
    )
    FieldRule.objects.bulk_create(
        [
            FieldRule(spec=spec, position=1, target_path="orderNumber", source_paths=["number"]),
            FieldRule(
                spec=spec,
                position=2,
                target_path="orderDate",
                source_paths=["placed"],
                kind="date_format",
                params={"from": "%d.%m.%Y", "to": "iso_date"},
            ),
            FieldRule(spec=spec, position=3, target_path="customerId", source_paths=["customer"]),
            FieldRule(
                spec=spec, position=4, target_path="items[*].code", source_paths=["lines[*].sku"]
            ),
            FieldRule(
                spec=spec,
                position=5,
                target_path="items[*].quantity",
                source_paths=["lines[*].qty"],
                kind="cast",
                params={"to": "integer"},
            ),
        ]
    )
    return spec


def test_a_spec_targeting_an_operation_transforms_and_validates(mapping):
    compiled = engine.compile_spec(mapping)
    output, problems = compiled.transform(
        {
            "number": "SO-1",
            "placed": "28.11.2024",
            "customer": None,
            "lines": [{"sku": "A1", "qty": "2"}],
        }
    )
    assert problems == []
    assert output == {
        "orderNumber": "SO-1",
        "orderDate": "2024-11-28",
        "customerId": None,
        "items": [{"code": "A1", "quantity": 2}],
    }


def test_the_target_schema_report_names_each_path_and_row(mapping):
    compiled = engine.compile_spec(mapping)
    output, problems = compiled.transform(
        {"placed": "28.11.2024", "lines": [{"sku": "TOO-LONG", "qty": "0"}, {"qty": "x"}]}
    )
    assert [problem.as_dict() for problem in problems] == [
        {
            "kind": "rule",
            "row": 5,
            "target_path": "items[1].quantity",
            "message": "cannot cast 'x' to integer",
        },
        {
            "kind": "schema",
            "row": 4,
            "target_path": "items[0].code",
            "message": "'TOO-LONG' is longer than 5 characters",
        },
        {
            "kind": "schema",
            "row": 5,
            "target_path": "items[0].quantity",
            "message": "0 is less than the minimum 1",
        },
        {
            "kind": "schema",
            "row": 4,
            "target_path": "items[1].code",
            "message": "missing (required)",
        },
        {
            "kind": "schema",
            "row": 5,
            "target_path": "items[1].quantity",
            "message": "missing (required)",
        },
        {"kind": "schema", "row": 1, "target_path": "orderNumber", "message": "missing (required)"},
    ]


def test_unknown_source_paths_and_target_paths_are_checked_against_both_schemas(mapping):
    FieldRule.objects.create(
        spec=mapping, position=6, target_path="items[*].price", source_paths=["lines[*].price"]
    )
    with pytest.raises(engine.CompileError) as info:
        engine.compile_spec(mapping)
    assert [str(p) for p in info.value.problems] == [
        "row 6, items[*].price: the source path lines[*].price is not in the source schema",
        "row 6, items[*].price: the target path items[*].price is not in the request body of POST /orders of INT-042 spec v1",
    ]


def test_response_schemas_pick_the_first_2xx_or_the_status_given(erp_spec):
    side = schemas.operation_schema(erp_spec, "POST /orders", "response")
    assert side.label == "the 201 response of POST /orders of INT-042 spec v1"
    assert schemas.find_field(side, ("status",)).types == frozenset({"string"})
    with pytest.raises(schemas.SchemaProblem, match="has no JSON body"):
        schemas.operation_schema(erp_spec, "POST /orders", "response", "400")
    with pytest.raises(
        schemas.SchemaProblem, match=r"documents no response status 404 \(documented: 201, 400\)"
    ):
        schemas.operation_schema(erp_spec, "POST /orders", "response", "404")


def test_nullable_in_openapi_3_0_counts_as_a_type(erp_spec):
    side = schemas.operation_schema(erp_spec, "POST /orders", "request")
    assert schemas.find_field(side, ("customerId",)).types == frozenset({"string", "null"})
    assert schemas.find_field(side, ("items", 0, "quantity")).types == frozenset({"integer"})
    assert not schemas.find_field(side, ("items", 0, "price")).found


def test_asyncapi_message_payloads_can_be_a_side(engineer, interface_a):
    spec = catalog_services.upload_spec(
        engineer,
        interface_a,
        (FIXTURES / "order_events_asyncapi26.yaml").read_text(),
        filename="events.yaml",
    )
    side = schemas.operation_schema(spec, "channel crm.customers.updated (publish)")
    assert schemas.find_field(side, ("fields", 0)).types == frozenset({"string"})
    with pytest.raises(schemas.SchemaProblem, match="exactly one kind of message"):
        schemas.operation_schema(spec, "channel erp.orders.status-changed (subscribe)")


@pytest.mark.parametrize(
    "fields, errors",
    [
        (
            {
                "source_schema": {"type": "object"},
                "source_operation": "POST /orders",
                "source_part": "request",
                "use_spec": True,
            },
            {
                "source_schema": [
                    "Give either a JSON Schema or an operation of a registered spec, not both."
                ]
            },
        ),
        (
            {"source_schema": {"type": "objekt"}},
            {
                "source_schema": [
                    "Not a valid JSON Schema at /type: 'objekt' is not valid under any of the given schemas"
                ]
            },
        ),
        (
            {"source_operation": "POST /orders"},
            {"source_operation": ["Choose a registered spec first."]},
        ),
        (
            {"use_spec": True, "source_operation": "GET /nothing", "source_part": "request"},
            {"source_operation": ["INT-042 spec v1 has no operation 'GET /nothing'"]},
        ),
        (
            {
                "use_spec": True,
                "source_operation": "POST /orders",
                "source_part": "response",
                "source_status": "500",
            },
            {
                "source_status": [
                    "POST /orders of INT-042 spec v1 documents no response status 500 (documented: 201, 400)"
                ]
            },
        ),
    ],
)
def test_a_badly_described_side_is_a_validation_error(interface_a, erp_spec, fields, errors):
    use_spec = fields.pop("use_spec", False)
    spec = MappingSpec(
        interface=interface_a, name="x", source_spec=erp_spec if use_spec else None, **fields
    )
    with pytest.raises(ValidationError) as info:
        spec.full_clean()
    assert info.value.message_dict == errors
