"""Runs the benchmarks under bench/, each in a process of its own; ``make bench`` calls it.

``python bench/run.py`` runs every benchmark; ``python bench/run.py contract_tests`` only the
ones named. Exits non-zero when a benchmark fails (an error, or a response that is not what it
measures). A median over its goal does not fail the run: it is reported in the table and in the
results file (``meets_goal``).
"""

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent

# One module per benchmark: bench/<name>.py, writing bench/results/<name>.json.
BENCHMARKS = ["catalog", "contract_tests", "mappings", "reconciliation"]


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(
            f"Unknown benchmark: {', '.join(unknown)}; there are {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    failed = []
    for name in names or BENCHMARKS:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, str(BENCH_DIR / f"{name}.py")], check=False)
        print(f"== {name}: exit {completed.returncode} after {time.perf_counter() - started:.0f} s")
        if completed.returncode != 0:
            failed.append(name)
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
