"""The API the contract-test benchmark tests: a small, fast HTTP/1.1 server on 127.0.0.1.

Run as its own process (``python bench/contract_server.py [--port N]``); it prints
``listening on <port>`` once it accepts connections and serves until it is terminated:

- ``GET /small/{id}``: an order, about 1 KB of JSON (schema ``Order``);
- ``GET /large/{id}``: a page of orders, about 50 KB of JSON (schema ``OrderPage``);
- ``GET /openapi.json``: the OpenAPI 3.1 document both conform to (:func:`spec_document`).

``id`` is an integer from 1 to 999,999; anything else is a 404 with a small JSON problem,
another method a 405, as the document says. Bodies are built once at start-up (a few variants,
picked by ``id``) so that the server does little more than write bytes: it has to stay far
from being the bottleneck of what it serves. It runs on asyncio's protocol layer (no
framework), keeps connections alive unless the client sends ``Connection: close``, and
answers pipelined requests in order.
"""

import argparse
import asyncio
import json
import random
import signal
import sys
from datetime import UTC, datetime, timedelta

MAX_ID = 999_999
VARIANTS = 32  # distinct bodies per size; /small/{id} serves variant id % VARIANTS
SMALL_LINES = 5  # order lines in an order: a small body is about 1 KB
LARGE_ORDERS = 50  # orders in a large body (about 50 KB)
MAX_HEAD_BYTES = 16 * 1024

STATUSES = ["open", "paid", "shipped", "cancelled"]
CURRENCIES = ["EUR", "USD", "GBP", "CHF"]
CITIES = [("Utrecht", "NL"), ("Leeds", "GB"), ("Lyon", "FR"), ("Graz", "AT"), ("Porto", "PT")]
PRODUCTS = ["Cable", "Router", "Switch", "Adapter", "Rack", "Patch panel", "Transceiver"]


# ---------------------------------------------------------------- the contract


def spec_document() -> dict:
    """The OpenAPI 3.1 document of the benchmark API: nested objects, additionalProperties
    false, a pattern, an enum, an array and a date-time format in every body."""
    id_parameter = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }
    not_found = {
        "description": "No such id.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }

    def operation(operation_id: str, summary: str, schema: str) -> dict:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "parameters": [id_parameter],
                "responses": {
                    "200": {
                        "description": summary,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{schema}"}
                            }
                        },
                    },
                    "404": not_found,
                },
            }
        }

    return {
        "openapi": "3.1.0",
        "info": {"title": "Contract benchmark API", "version": "1.0.0"},
        "paths": {
            "/small/{id}": operation("getOrder", "One order (about 1 KB).", "Order"),
            "/large/{id}": operation(
                "getOrderPage", "A page of orders (about 50 KB).", "OrderPage"
            ),
        },
        "components": {
            "schemas": {
                "Address": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["street", "city", "postcode", "country"],
                    "properties": {
                        "street": {"type": "string"},
                        "city": {"type": "string"},
                        "postcode": {"type": "string"},
                        "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                    },
                },
                "Customer": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "name", "email", "address"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^CUS-[0-9]{6}$"},
                        "name": {"type": "string"},
                        "email": {"type": "string"},
                        "address": {"$ref": "#/components/schemas/Address"},
                    },
                },
                "OrderLine": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["sku", "description", "quantity", "unit_price", "currency"],
                    "properties": {
                        "sku": {"type": "string", "pattern": "^SKU-[0-9]{5}$"},
                        "description": {"type": "string"},
                        "quantity": {"type": "integer", "minimum": 1},
                        "unit_price": {"type": "number", "minimum": 0},
                        "currency": {"type": "string", "enum": CURRENCIES},
                    },
                },
                "Order": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "status", "created_at", "customer", "lines", "total"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^ORD-[0-9]{6}$"},
                        "status": {"type": "string", "enum": STATUSES},
                        "created_at": {"type": "string", "format": "date-time"},
                        "customer": {"$ref": "#/components/schemas/Customer"},
                        "lines": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"$ref": "#/components/schemas/OrderLine"},
                        },
                        "total": {"type": "number", "minimum": 0},
                        "notes": {"type": "string"},
                    },
                },
                "OrderPage": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["page", "generated_at", "orders"],
                    "properties": {
                        "page": {"type": "integer", "minimum": 1},
                        "generated_at": {"type": "string", "format": "date-time"},
                        "orders": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Order"},
                        },
                    },
                },
                "Problem": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["title", "status"],
                    "properties": {
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                    },
                },
            }
        },
    }


def order(rng: random.Random, number: int) -> dict:
    """One order conforming to ``Order``, with an e-mail address for masking to find."""
    city, country = rng.choice(CITIES)
    customer = rng.randrange(1, 1_000_000)
    lines = []
    for _ in range(SMALL_LINES):
        lines.append(
            {
                "sku": f"SKU-{rng.randrange(100_000):05d}",
                "description": f"{rng.choice(PRODUCTS)}, {rng.randrange(1, 50)} m, grey",
                "quantity": rng.randrange(1, 20),
                "unit_price": round(rng.uniform(1, 500), 2),
                "currency": rng.choice(CURRENCIES),
            }
        )
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(30_000_000))
    return {
        "id": f"ORD-{number % 1_000_000:06d}",
        "status": rng.choice(STATUSES),
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "customer": {
            "id": f"CUS-{customer:06d}",
            "name": f"Customer {customer}",
            "email": f"buyer{customer}@example.com",
            "address": {
                "street": f"{rng.randrange(1, 300)} Station Road",
                "city": city,
                "postcode": f"{rng.randrange(1000, 9999)} AB",
                "country": country,
            },
        },
        "lines": lines,
        "total": round(sum(line["quantity"] * line["unit_price"] for line in lines), 2),
        "notes": "Deliver to the loading dock at the back; call ahead between 8:00 and 16:00.",
    }


def small_body(variant: int) -> bytes:
    return json.dumps(order(random.Random(variant), variant + 1)).encode()


def large_body(variant: int) -> bytes:
    rng = random.Random(10_000 + variant)
    page = {
        "page": variant + 1,
        "generated_at": "2026-06-01T12:00:00Z",
        "orders": [order(rng, variant * LARGE_ORDERS + n + 1) for n in range(LARGE_ORDERS)],
    }
    return json.dumps(page).encode()


# ---------------------------------------------------------------- HTTP


def http_response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra}\r\n"
    )
    return head.encode("ascii") + body


class Responses:
    """Every response the server can give, built once."""

    def __init__(self):
        self.small = [http_response(200, "OK", small_body(v)) for v in range(VARIANTS)]
        self.large = [http_response(200, "OK", large_body(v)) for v in range(VARIANTS)]
        self.spec = http_response(200, "OK", json.dumps(spec_document()).encode())
        self.not_found = http_response(
            404, "Not Found", json.dumps({"title": "No such id.", "status": 404}).encode()
        )
        self.not_allowed = http_response(
            405,
            "Method Not Allowed",
            json.dumps({"title": "Method not allowed.", "status": 405}).encode(),
            "Allow: GET\r\n",
        )
        self.bad_request = http_response(
            400, "Bad Request", json.dumps({"title": "Bad request.", "status": 400}).encode()
        )

    def answer(self, method: bytes, target: bytes) -> bytes:
        path = target.split(b"?", 1)[0]
        if path == b"/openapi.json":
            return self.spec if method in (b"GET", b"HEAD") else self.not_allowed
        prefix, _, raw_id = path.rpartition(b"/")
        if prefix not in (b"/small", b"/large"):
            return self.not_found
        if method != b"GET":
            return self.not_allowed
        if not raw_id.isdigit() or not 1 <= int(raw_id) <= MAX_ID:
            return self.not_found
        variants = self.small if prefix == b"/small" else self.large
        return variants[int(raw_id) % VARIANTS]


class HttpProtocol(asyncio.Protocol):
    """One client connection: requests in, precomputed responses out."""

    def __init__(self, responses: Responses):
        self.responses = responses
        self.buffer = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self.reply(self.responses.bad_request, close=True)
                return
            head = self.buffer[:end]
            lines = head.split(b"\r\n")
            request_line = lines[0].split(b" ")
            if len(request_line) != 3:
                self.reply(self.responses.bad_request, close=True)
                return
            method, target, version = request_line
            length = 0
            close = version == b"HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip() or b"0")
                elif name == b"connection":
                    token = value.strip().lower()
                    close = token == b"close" or (close and token != b"keep-alive")
            if len(self.buffer) < end + 4 + length:
                return  # the request body is still on its way
            self.buffer = self.buffer[end + 4 + length :]
            response = self.responses.answer(method, target)
            if method == b"HEAD":
                response = response[: response.index(b"\r\n\r\n") + 4]
            self.reply(response, close=close)

    def reply(self, response: bytes, *, close: bool):
        self.transport.write(response)
        if close:
            self.transport.close()
            self.transport = None

    def connection_lost(self, exc):
        self.transport = None


async def serve(port: int) -> None:
    responses = Responses()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(responses), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(
        f"listening on {bound} (small body {len(responses.small[0])} bytes, "
        f"large body {len(responses.large[0])} bytes, with headers)",
        flush=True,
    )
    async with server:
        await stop.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
