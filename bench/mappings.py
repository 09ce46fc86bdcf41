"""Mapping benchmark: records per second per core of the mapping engine, next to the same
transformation written by hand in Python (the floor of a compiled approach), in the same run.

1. Compiles a 40-row mapping (``compile_rules`` on unsaved ``FieldRule`` rows): two lookups,
   three date reformats (one across time zones), casts, code maps, concat, pad, arithmetic,
   and an array of line items (20 per record) with 15 rows walking it, one of them
   broadcasting a top-level value into every item. The target side is an inline JSON Schema
   of the output (types, enums, formats, ``additionalProperties: false``).
2. Builds ``SAMPLE_RECORDS`` different payloads and checks, once and before any timing, that
   the engine's output equals the hand-written function's output on every one of them, with
   no problems, the schema validation included (otherwise the benchmark fails).
3. Times, in 3 passes, each over ``TIMED_RECORDS`` records in one thread: the hand-written
   function, the engine without validation and the engine with target-schema validation, one
   after the other in each pass. A rate is records per CPU-second of the thread
   (``time.thread_time``), so it is the rate of one core whatever else the machine runs; the
   wall-clock rate is kept beside it. A figure is the median of the 3 pass rates.

Run it with ``make bench`` (all benchmarks), ``.venv/bin/python bench/run.py mappings`` or
``.venv/bin/python bench/mappings.py`` (``--profile`` prints the engine's cProfile instead).
It needs no database and writes ``bench/results/mappings.json``.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import common

PASSES = 3
SAMPLE_RECORDS = 50
TIMED_RECORDS = int(os.environ.get("PONTIS_BENCH_RECORDS", "3000"))
WARMUP_RECORDS = 200
LINE_ITEMS = 20
PROFILE_RECORDS = 2000
# Goal from the issue: the engine at least half as fast as the hand-written function.
ENGINE_GOAL = 0.5

COUNTRIES = {f"C{number:03d}": f"Country {number}" for number in range(200)} | {
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "US": "United States",
}
CURRENCIES = {"EUR": "978", "USD": "840", "GBP": "826", "CHF": "756"}
LOOKUPS = {"countries": COUNTRIES, "currencies": CURRENCIES}
SEGMENTS = {"A": "gold", "B": "silver"}
STATUSES = {"N": "new", "P": "paid", "S": "shipped"}
UNITS = {"pc": "PCE", "kg": "KGM"}
TAX_CODES = {"S": "VAT19", "R": "VAT7"}
BERLIN = ZoneInfo("Europe/Berlin")

# (target path, source paths, kind, params): 40 rows, in row order.
RULES = [
    ("order.id", ["id"], "copy", {}),
    ("order.number", ["number"], "upper", {}),
    (
        "order.orderDate",
        ["created"],
        "date_format",
        {"from": "%d.%m.%Y %H:%M", "to": "iso", "from_tz": "Europe/Berlin", "to_tz": "UTC"},
    ),
    ("order.deliveryDate", ["delivery"], "date_format", {"from": "%d.%m.%Y", "to": "%Y-%m-%d"}),
    ("order.paymentDue", ["due"], "date_format", {"from": "iso", "to": "%Y%m%d"}),
    ("order.country", ["customer.country"], "lookup", {"table": "countries"}),
    ("order.currency", ["currency"], "lookup", {"table": "currencies"}),
    ("order.customer.id", ["customer.id"], "copy", {}),
    (
        "order.customer.name",
        ["customer.first", "customer.last"],
        "concat",
        {"separator": " "},
    ),
    ("order.customer.email", ["customer.email"], "lower", {}),
    ("order.customer.phone", ["customer.phone"], "trim", {}),
    ("order.customer.vip", ["customer.vip"], "cast", {"to": "boolean"}),
    (
        "order.customer.segment",
        ["customer.segment"],
        "code_map",
        {"map": SEGMENTS, "default": "bronze"},
    ),
    ("order.channel", [], "constant", {"value": "WEB"}),
    ("order.status", ["status"], "code_map", {"map": STATUSES}),
    ("order.note", ["note"], "default", {"value": ""}),
    ("order.ref", ["ref"], "pad", {"width": 10, "fill": "0"}),
    ("order.total", ["total"], "cast", {"to": "number"}),
    ("order.tax", ["total"], "arithmetic", {"op": "*", "operand": "0.19", "places": 2}),
    ("order.shipping.street", ["ship.street"], "copy", {}),
    ("order.shipping.city", ["ship.city"], "upper", {}),
    ("order.shipping.zip", ["ship.zip"], "copy", {}),
    ("order.shipping.country", ["ship.country"], "copy", {}),
    ("order.billing.same", ["billing_same"], "cast", {"to": "boolean"}),
    ("order.source", ["source"], "copy", {}),
    ("order.items[*].lineNo", ["lines[*].no"], "cast", {"to": "integer"}),
    ("order.items[*].sku", ["lines[*].sku"], "upper", {}),
    ("order.items[*].description", ["lines[*].desc"], "trim", {}),
    ("order.items[*].quantity", ["lines[*].qty"], "cast", {"to": "integer"}),
    ("order.items[*].unitPrice", ["lines[*].price"], "cast", {"to": "number"}),
    (
        "order.items[*].amount",
        ["lines[*].qty", "lines[*].price"],
        "arithmetic",
        {"op": "*", "places": 2},
    ),
    ("order.items[*].unit", ["lines[*].unit"], "code_map", {"map": UNITS, "default": "PCE"}),
    ("order.items[*].warehouse", ["lines[*].wh"], "copy", {}),
    ("order.items[*].discount", ["lines[*].disc"], "default", {"value": 0}),
    ("order.items[*].taxCode", ["lines[*].tax"], "code_map", {"map": TAX_CODES}),
    ("order.items[*].gift", ["lines[*].gift"], "cast", {"to": "boolean"}),
    ("order.items[*].color", ["lines[*].color"], "lower", {}),
    ("order.items[*].size", ["lines[*].size"], "copy", {}),
    ("order.items[*].batch", ["lines[*].batch"], "substring", {"start": 0, "length": 6}),
    ("order.items[*].currency", ["currency"], "copy", {}),  # broadcast into every item
]

_STRING = {"type": "string"}
_BOOLEAN = {"type": "boolean"}
TARGET_SCHEMA = {
    "type": "object",
    "required": ["order"],
    "additionalProperties": False,
    "properties": {
        "order": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "number", "orderDate", "items"],
            "properties": {
                "id": {"type": "integer"},
                "number": {"type": "string", "pattern": "^SO-[0-9]+$"},
                "orderDate": {"type": "string", "format": "date-time"},
                "deliveryDate": {"type": "string", "format": "date"},
                "paymentDue": {"type": "string", "pattern": "^[0-9]{8}$"},
                "country": _STRING,
                "currency": {"type": "string", "pattern": "^[0-9]{3}$"},
                "customer": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "id": _STRING,
                        "name": _STRING,
                        "email": {"type": "string", "format": "email"},
                        "phone": _STRING,
                        "vip": _BOOLEAN,
                        "segment": {"enum": ["gold", "silver", "bronze"]},
                    },
                },
                "channel": {"enum": ["WEB", "EDI"]},
                "status": {"enum": list(STATUSES.values())},
                "note": _STRING,
                "ref": {"type": "string", "minLength": 10, "maxLength": 10},
                "total": {"type": "number"},
                "tax": {"type": "number"},
                "shipping": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "street": _STRING,
                        "city": _STRING,
                        "zip": _STRING,
                        "country": _STRING,
                    },
                },
                "billing": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"same": _BOOLEAN},
                },
                "source": _STRING,
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["lineNo", "sku", "quantity", "amount"],
                        "properties": {
                            "lineNo": {"type": "integer", "minimum": 1},
                            "sku": _STRING,
                            "description": _STRING,
                            "quantity": {"type": "integer", "minimum": 1},
                            "unitPrice": {"type": "number"},
                            "amount": {"type": "number"},
                            "unit": {"enum": list(UNITS.values())},
                            "warehouse": _STRING,
                            "discount": {"type": "number"},
                            "taxCode": {"enum": list(TAX_CODES.values())},
                            "gift": _BOOLEAN,
                            "color": _STRING,
                            "size": _STRING,
                            "batch": _STRING,
                            "currency": _STRING,
                        },
                    },
                },
            },
        }
    },
}


# ---------------------------------------------------------------- the records


def sample_records(count: int) -> list[dict]:
    """``count`` different payloads (a fixed seed: the same ones on every run)."""
    chance = random.Random(1)
    countries = sorted(COUNTRIES)
    records = []
    start = datetime(2024, 1, 1, 0, 0)
    for number in range(1, count + 1):
        created = start + timedelta(minutes=chance.randrange(0, 525_600))
        lines = []
        for line in range(1, LINE_ITEMS + 1):
            lines.append(
                {
                    "no": str(line),
                    "sku": f"sku-{chance.randrange(10_000):05d}",
                    "desc": f"  item {line} of order {number} ",
                    "qty": str(chance.randrange(1, 13)),
                    "price": round(chance.uniform(0.5, 250), 2),
                    "unit": chance.choice(["pc", "kg", "box"]),
                    "wh": chance.choice(["W1", "W2", "W3"]),
                    "disc": chance.choice([None, "", 5, 12.5]),
                    "tax": chance.choice(["S", "R"]),
                    "gift": chance.choice(["0", "1", "yes", "no"]),
                    "color": chance.choice(["RED", "Blue", "green"]),
                    "size": chance.choice(["S", "M", "L", "XL"]),
                    "batch": f"B{chance.randrange(10**9):09d}",
                }
            )
        records.append(
            {
                "id": 100_000 + number,
                "number": f"so-{100_000 + number}",
                "created": created.strftime("%d.%m.%Y %H:%M"),
                "delivery": (created + timedelta(days=3)).strftime("%d.%m.%Y"),
                "due": (created + timedelta(days=30)).date().isoformat(),
                "currency": chance.choice(sorted(CURRENCIES)),
                "status": chance.choice(sorted(STATUSES)),
                "note": chance.choice([None, "", "leave at the door"]),
                "ref": str(chance.randrange(1, 10**6)),
                "total": f"{chance.uniform(10, 5000):.2f}",
                "billing_same": chance.choice(["yes", "no", "true", "0"]),
                "source": chance.choice(["shop", "app", "phone"]),
                "customer": {
                    "id": f"C-{chance.randrange(10**5)}",
                    "first": chance.choice(["Ada", "Grace", "Alan", "Edsger"]),
                    "last": chance.choice(["Lovelace", "Hopper", "Turing", "Dijkstra"]),
                    "email": f"CUSTOMER.{number}@EXAMPLE.COM",
                    "phone": f" +49 30 {chance.randrange(10**6)} ",
                    "vip": chance.choice(["yes", "no", "1", "0"]),
                    "segment": chance.choice(["A", "B", "C"]),
                    "country": chance.choice(countries),
                },
                "ship": {
                    "street": f"Main Street {number}",
                    "city": chance.choice(["Berlin", "Paris", "Amsterdam"]),
                    "zip": f"{chance.randrange(10**5):05d}",
                    "country": chance.choice(["DE", "FR", "NL"]),
                },
                "lines": lines,
            }
        )
    return records


# ---------------------------------------------------------------- the hand-written function

_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on"})
_CENT = Decimal("0.01")
_TAX_RATE = Decimal("0.19")


def _boolean(text: str) -> bool:
    return text.strip().lower() in _TRUE_WORDS


def _json_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def hand_written(source: dict) -> dict:
    """The mapping of ``RULES`` written by hand for these payloads: what a developer would
    write for this one mapping (no problem reporting; bad data would raise)."""
    customer = source["customer"]
    ship = source["ship"]
    currency = source["currency"]
    items = []
    for line in source["lines"]:
        price = line["price"]
        amount = (Decimal(line["qty"]) * Decimal(repr(price))).quantize(_CENT, ROUND_HALF_UP)
        discount = line["disc"]
        items.append(
            {
                "lineNo": int(line["no"]),
                "sku": line["sku"].upper(),
                "description": line["desc"].strip(),
                "quantity": int(line["qty"]),
                "unitPrice": price,
                "amount": _json_number(amount),
                "unit": UNITS.get(line["unit"], "PCE"),
                "warehouse": line["wh"],
                "discount": 0 if discount is None or discount == "" else discount,
                "taxCode": TAX_CODES[line["tax"]],
                "gift": _boolean(line["gift"]),
                "color": line["color"].lower(),
                "size": line["size"],
                "batch": line["batch"][:6],
                "currency": currency,
            }
        )
    created = datetime.strptime(source["created"], "%d.%m.%Y %H:%M")
    tax = (Decimal(source["total"]) * _TAX_RATE).quantize(_CENT, ROUND_HALF_UP)
    note = source["note"]
    return {
        "order": {
            "id": source["id"],
            "number": source["number"].upper(),
            "orderDate": created.replace(tzinfo=BERLIN).astimezone(UTC).isoformat(),
            "deliveryDate": datetime.strptime(source["delivery"], "%d.%m.%Y").strftime("%Y-%m-%d"),
            "paymentDue": datetime.fromisoformat(source["due"]).strftime("%Y%m%d"),
            "country": COUNTRIES[customer["country"]],
            "currency": CURRENCIES[currency],
            "customer": {
                "id": customer["id"],
                "name": f"{customer['first']} {customer['last']}",
                "email": customer["email"].lower(),
                "phone": customer["phone"].strip(),
                "vip": _boolean(customer["vip"]),
                "segment": SEGMENTS.get(customer["segment"], "bronze"),
            },
            "channel": "WEB",
            "status": STATUSES[source["status"]],
            "note": "" if note is None or note == "" else note,
            "ref": source["ref"].rjust(10, "0"),
            "total": _json_number(Decimal(source["total"])),
            "tax": _json_number(tax),
            "shipping": {
                "street": ship["street"],
                "city": ship["city"].upper(),
                "zip": ship["zip"],
                "country": ship["country"],
            },
            "billing": {"same": _boolean(source["billing_same"])},
            "source": source["source"],
            "items": items,
        }
    }


# ---------------------------------------------------------------- set-up and checks


def setup_django() -> None:
    """Django settings for the unsaved FieldRule rows; no database is used."""
    os.environ["PONTIS_VAR_DIR"] = str(common.BENCH_VAR_DIR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    (common.BENCH_VAR_DIR / "static").mkdir(parents=True, exist_ok=True)
    if str(common.REPO_DIR) not in sys.path:
        sys.path.insert(0, str(common.REPO_DIR))
    import django

    django.setup()


def compile_mapping():
    from apps.mappings import engine, schemas
    from apps.mappings.models import FieldRule

    rows = [
        FieldRule(
            position=position, target_path=target, source_paths=sources, kind=kind, params=params
        )
        for position, (target, sources, kind, params) in enumerate(RULES, start=1)
    ]
    target = schemas.SideSchema(
        TARGET_SCHEMA, TARGET_SCHEMA, schemas.JSON_SCHEMA_VERSION, "the benchmark's target schema"
    )
    return engine.compile_rules(rows, target=target, lookups=LOOKUPS)


def describe_mapping() -> dict:
    kinds: dict[str, int] = {}
    for _, _, kind, _ in RULES:
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "rows": len(RULES),
        "rows_in_the_item_array": sum("[*]" in target for target, *_ in RULES),
        "line_items_per_record": LINE_ITEMS,
        "lookup_rows": kinds.get("lookup", 0),
        "date_format_rows": kinds.get("date_format", 0),
        "kinds": kinds,
        "sample_records": SAMPLE_RECORDS,
        "target_schema": "inline JSON Schema of the output (types, enums, patterns, formats, "
        "additionalProperties false)",
    }


def check_same_output(compiled, records: list[dict]) -> None:
    """The engine must make exactly what the hand-written function makes, without problems,
    before anything is timed: otherwise the comparison would not be fair."""
    from apps.mappings.diff import structural_diff

    for number, record in enumerate(records):
        expected = hand_written(record)
        for validate in (False, True):
            output, problems = compiled.transform(record, validate=validate)
            if problems:
                shown = "; ".join(str(problem) for problem in problems[:5])
                raise common.BenchError(f"record {number}: the engine reported problems: {shown}")
            if output != expected:
                differences = structural_diff(expected, output)[:5]
                raise common.BenchError(
                    f"record {number}: the engine's output differs from the hand-written "
                    f"function's: {differences}"
                )


# ---------------------------------------------------------------- measuring


def time_records(transform, records: list[dict], count: int) -> dict:
    """``count`` records (cycling through ``records``) in this thread: CPU and wall rates."""
    batch = [records[index % len(records)] for index in range(count)]
    cpu_started = time.thread_time()
    wall_started = time.perf_counter()
    for record in batch:
        transform(record)
    wall = time.perf_counter() - wall_started
    cpu = time.thread_time() - cpu_started
    return {"cpu_rate": count / cpu, "wall_rate": count / wall}


def measure(compiled, records: list[dict]) -> dict[str, list[dict]]:
    contenders = {
        "hand": hand_written,
        "engine": lambda record: compiled.transform(record, validate=False),
        "engine_validated": lambda record: compiled.transform(record, validate=True),
    }
    for transform in contenders.values():
        time_records(transform, records, WARMUP_RECORDS)
    samples: dict[str, list[dict]] = {name: [] for name in contenders}
    for number in range(1, PASSES + 1):
        for name, transform in contenders.items():
            samples[name].append(time_records(transform, records, TIMED_RECORDS))
        rates = ", ".join(f"{name} {samples[name][-1]['cpu_rate']:,.0f}/s" for name in contenders)
        print(f"pass {number}: {rates}", flush=True)
    return samples


def _median(passes: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in passes)


def build_figures(samples: dict[str, list[dict]]) -> list[dict]:
    hand = _median(samples["hand"], "cpu_rate")
    engine = _median(samples["engine"], "cpu_rate")
    return [
        _figure(
            "mapping engine, 40 rows (2 lookups, 3 date reformats, 20 line items), no validation",
            samples["engine"],
            "hand-written Python function doing the same transformation (same run, same records)",
            hand,
            goal=ENGINE_GOAL,
        ),
        _figure(
            "mapping engine, same mapping, with target-schema validation",
            samples["engine_validated"],
            "mapping engine without validation (same run)",
            engine,
        ),
    ]


def _figure(metric, passes, anchor, anchor_value, goal=None) -> dict:
    value = _median(passes, "cpu_rate")
    ratio = value / anchor_value
    figure = {
        "metric": metric,
        "unit": "records/s per core",
        "value": round(value, 1),
        "anchor": anchor,
        "anchor_value": round(anchor_value, 1),
        "ratio": round(ratio, 3),
        "pass_values": [round(sample["cpu_rate"], 1) for sample in passes],
        "wall_clock_records_per_second": round(_median(passes, "wall_rate"), 1),
        "records_per_pass": TIMED_RECORDS,
    }
    if goal is not None:
        figure["goal"] = f"ratio >= {goal:g}"
        figure["meets_goal"] = ratio >= goal
    return figure


def results_document(samples: dict[str, list[dict]], figures: list[dict]) -> dict:
    machine = common.machine_info()
    for key in ("database_vendor", "database_version"):
        machine.pop(key, None)  # no database is used
    hand = samples["hand"]
    return {
        "benchmark": "mappings",
        "machine": machine,
        "dataset": describe_mapping(),
        "anchors": {
            "hand_written_records_per_second": {
                "median": round(_median(hand, "cpu_rate"), 1),
                "pass_values": [round(sample["cpu_rate"], 1) for sample in hand],
                "wall_clock_median": round(_median(hand, "wall_rate"), 1),
            }
        },
        "method": {
            "passes": PASSES,
            "records_per_pass": TIMED_RECORDS,
            "warm_up_records": WARMUP_RECORDS,
            "value": "median of the per-pass rates; records per CPU-second of the one thread "
            "(time.thread_time), i.e. per core",
            "equality": f"before timing, the engine's output (with and without validation) was "
            f"checked equal to the hand-written function's on all {SAMPLE_RECORDS} sample "
            "records, with no problems",
            "engine": "CompiledMapping.transform(record, validate=False|True) of "
            "engine.compile_rules on unsaved FieldRule rows",
        },
        "figures": figures,
    }


def print_report(samples: dict[str, list[dict]], figures: list[dict]) -> None:
    hand = _median(samples["hand"], "cpu_rate")
    print()
    print(
        f"{len(RULES)} rows, {LINE_ITEMS} line items per record, {TIMED_RECORDS:,} records per "
        f"pass, {PASSES} passes, medians; one thread. Hand-written function: {hand:,.0f} records/s."
    )
    print()
    rows = []
    for figure in figures:
        goal = figure.get("goal", "")
        if goal and not figure["meets_goal"]:
            goal += " MISS"
        rows.append(
            [
                figure["metric"],
                f"{figure['value']:,.0f}",
                figure["unit"],
                f"{figure['anchor_value']:,.0f}",
                f"{figure['ratio']:.2f}",
                goal,
            ]
        )
    print(common.format_table(["figure", "value", "unit", "anchor", "ratio", "goal"], rows))
    print()
    missed = [figure for figure in figures if figure.get("meets_goal") is False]
    if missed:
        print(f"{len(missed)} goal(s) missed:")
        for figure in missed:
            print(f"  {figure['metric']}: ratio {figure['ratio']} ({figure['goal']})")
    else:
        print("Every goal is met.")


def profile(compiled, records: list[dict]) -> int:
    """The engine (no validation) on ``PROFILE_RECORDS`` records under cProfile."""
    batch = [records[index % len(records)] for index in range(PROFILE_RECORDS)]
    profiler = cProfile.Profile()
    profiler.enable()
    for record in batch:
        compiled.transform(record, validate=False)
    profiler.disable()
    for order in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(order).print_stats(25)
        print(f"\n== {PROFILE_RECORDS:,} records, by {order}\n")
        print(text.getvalue().split("\n", 4)[-1].rstrip())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"instead of benchmarking, run the engine on {PROFILE_RECORDS:,} records under "
        "cProfile and print where the time goes",
    )
    arguments = parser.parse_args()
    try:
        setup_django()
        compiled = compile_mapping()
        records = sample_records(SAMPLE_RECORDS)
        check_same_output(compiled, records)
        print(
            f"The engine's output equals the hand-written function's on all {SAMPLE_RECORDS} "
            "sample records (with and without validation, no problems)."
        )
        if arguments.profile:
            return profile(compiled, records)
        samples = measure(compiled, records)
        figures = build_figures(samples)
        path = common.write_results("mappings", results_document(samples, figures))
        print_report(samples, figures)
        print(f"\nResults written to {path.relative_to(common.REPO_DIR)}")
        return 0
    except common.BenchError as exc:
        print(f"mappings benchmark failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
