"""A plain, obviously-correct reconciliation: every row in memory, Counters and dicts.

The strategies of apps.reconciliation are compared with this on random datasets. It uses
the same per-value normalisers (whose meaning is pinned by example in test_compare.py) but
none of the engine's partitioning, spilling, SQL or sampling.
"""

from collections import Counter

from apps.reconciliation.compare import Plan, normaliser, values_equal


def reconcile(plan: Plan, source_rows: list[tuple], target_rows: list[tuple]) -> dict:
    normalisers = [normaliser(plan.rules[s]) for s, _ in plan.keys + plan.columns]
    k = len(plan.keys)

    def normalised(rows):
        return [tuple(n(v) for n, v in zip(normalisers, row, strict=True)) for row in rows]

    source = normalised(source_rows)
    target = normalised(target_rows)
    source_count = Counter(row[:k] for row in source)
    target_count = Counter(row[:k] for row in target)
    source_first = {}
    for row in source:
        source_first.setdefault(row[:k], row[k:])
    target_first = {}
    for row in target:
        target_first.setdefault(row[:k], row[k:])

    result = Counter()
    columns = Counter({s: 0 for s, _ in plan.columns})
    for key in set(source_count) | set(target_count):
        s, t = source_count[key], target_count[key]
        if s > 1:
            result["duplicate_source_keys"] += 1
            result["duplicate_source_rows"] += s
        if t > 1:
            result["duplicate_target_keys"] += 1
            result["duplicate_target_rows"] += t
        if t == 0:
            result["missing_in_target"] += 1
        elif s == 0:
            result["unexpected_in_target"] += 1
        elif s > 1 or t > 1:
            result["duplicates"] += 1
        else:
            differing = [
                name
                for (name, _), a, b in zip(
                    plan.columns, source_first[key], target_first[key], strict=True
                )
                if not values_equal(a, b, plan.rules[name])
            ]
            if differing:
                result["mismatched"] += 1
                columns.update(differing)
            else:
                result["matched"] += 1
    counts = {
        name: result[name]
        for name in (
            "matched",
            "mismatched",
            "missing_in_target",
            "unexpected_in_target",
            "duplicates",
            "duplicate_source_keys",
            "duplicate_source_rows",
            "duplicate_target_keys",
            "duplicate_target_rows",
        )
    }
    counts["source_rows"] = len(source_rows)
    counts["target_rows"] = len(target_rows)
    return {"counts": counts, "column_mismatches": dict(columns)}
