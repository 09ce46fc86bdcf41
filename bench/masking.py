"""Micro-benchmark of evidence masking: ``mask_payload`` per call, before and after its fast paths.

``python bench/masking.py`` times ``apps.core.masking.mask_payload`` on the bodies the
contract-test benchmark's server answers (``bench/contract_server.py``): an order of about
1 KB and a page of 50 orders of about 50 KB, 8 variants of each, parsed once, masked with a
bearer token as the known secret, as the contract-test runner masks every response body.

"before" is the implementation the fast paths replaced, kept verbatim as the reference of
``tests/core/test_masking_fast_path.py``; "after" is the module's. Both must give identical
output on every body (checked first: the benchmark fails otherwise). Each round times both,
one after the other, so that a busy machine slows both alike; a figure is the median over
the rounds. Goals: at least 3 times faster on the 50 KB body, no slower on the 1 KB one.
A missed goal is reported, it does not fail the run. The table gives milliseconds per call.
Not part of ``bench/run.py``: it writes no results file.
"""

import json
import statistics
import sys
import time

import common
import contract_server

sys.path.insert(0, str(common.REPO_DIR))

from apps.core.masking import mask_payload  # noqa: E402
from tests.core.test_masking_fast_path import (  # noqa: E402
    _reference_mask_payload,
    assert_identical,
)

VARIANTS = 8
ROUNDS = 7
CALLS_PER_ROUND = {"1 KB": 2000, "50 KB": 100}
GOALS = {"1 KB": 1.0, "50 KB": 3.0}  # least speed-up
SECRETS = ["bench-token-0123456789abcdef"]


def bodies(size: str) -> list:
    build = contract_server.small_body if size == "1 KB" else contract_server.large_body
    return [json.loads(build(variant)) for variant in range(VARIANTS)]


def per_call_ms(mask, payloads: list, calls: int) -> float:
    started = time.perf_counter()
    for index in range(calls):
        mask(payloads[index % len(payloads)], secrets=SECRETS)
    return (time.perf_counter() - started) / calls * 1000


def measure(size: str) -> dict:
    payloads = bodies(size)
    for payload in payloads:
        assert_identical(
            mask_payload(payload, secrets=SECRETS),
            _reference_mask_payload(payload, secrets=SECRETS),
        )
    calls = CALLS_PER_ROUND[size]
    before, after = [], []
    for _ in range(ROUNDS):
        before.append(per_call_ms(_reference_mask_payload, payloads, calls))
        after.append(per_call_ms(mask_payload, payloads, calls))
    speed_up = statistics.median(before) / statistics.median(after)
    return {
        "body": f"{size} ({statistics.mean(len(json.dumps(p)) for p in payloads):,.0f} B)",
        "before": statistics.median(before),
        "after": statistics.median(after),
        "before_best": min(before),
        "after_best": min(after),
        "speed_up": speed_up,
        "goal": GOALS[size],
    }


def main() -> int:
    try:
        figures = [measure(size) for size in CALLS_PER_ROUND]
    except AssertionError as error:
        print(f"mask_payload output differs from the reference: {error}", file=sys.stderr)
        return 1
    rows = [
        [
            figure["body"],
            f"{figure['before']:.3f}",
            f"{figure['after']:.3f}",
            f"{figure['before_best']:.3f}",
            f"{figure['after_best']:.3f}",
            f"{figure['speed_up']:.2f}x",
            f">= {figure['goal']:g}x {'ok' if figure['speed_up'] >= figure['goal'] else 'MISS'}",
        ]
        for figure in figures
    ]
    headers = ["body", "before", "after", "best before", "best after", "speed-up", "goal"]
    print(f"mask_payload, ms per call: median of {ROUNDS} rounds, and the best round")
    print(common.format_table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
