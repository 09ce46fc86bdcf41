"""A test run as JUnit XML, the format CI servers read."""

from xml.etree.ElementTree import Element, SubElement, tostring  # noqa: S405 - writing, not parsing

from apps.testing.models import Outcome, TestRun


def run_as_junit(run: TestRun) -> bytes:
    results = list(run.results.order_by("case_name"))
    suite = Element(
        "testsuite",
        name=f"{run.interface.code} {run.environment.name}",
        tests=str(len(results)),
        failures=str(sum(r.outcome == Outcome.FAILED for r in results)),
        errors=str(sum(r.outcome == Outcome.ERRORED for r in results)),
        time=f"{(run.duration_seconds or 0):.3f}",
    )
    for result in results:
        case = SubElement(
            suite,
            "testcase",
            classname=run.interface.code,
            name=result.case_name,
            time=f"{(result.elapsed_ms or 0) / 1000:.3f}",
        )
        failed_checks = [c for c in result.checks if c.get("passed") is False]
        if result.outcome == Outcome.FAILED:
            failure = SubElement(
                case, "failure", message="; ".join(c["name"] for c in failed_checks)
            )
            failure.text = "\n".join(
                f"{c['name']}: {c['message']}" + "".join(f"\n  {d}" for d in c.get("details", []))
                for c in failed_checks
            )
        elif result.outcome == Outcome.ERRORED:
            SubElement(case, "error", message=result.error[:500]).text = result.error
        SubElement(case, "system-out").text = f"correlation id {result.correlation_id}"
    return tostring(suite, encoding="utf-8", xml_declaration=True)
