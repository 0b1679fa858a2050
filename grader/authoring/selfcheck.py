"""The learner's self-check: the public checks, in the learner's own process.

From a notebook, after running its cells::

    from grader.authoring.selfcheck import check
    check()                   # every part
    check("create_example")   # one part

From a terminal: ``grader check NOTEBOOK``. Only public checks run here; grading runs them all in a
sandbox.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from grader.checking import CheckResult


def format_summary(results: list[CheckResult]) -> str:
    lines = []
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        lines.append(
            f"[{mark}] {result.number} {result.name} ({result.score:g}/{result.max_score:g})"
        )
        if result.message:
            lines.extend("       " + line for line in result.message.splitlines()[:12])
    got = sum(r.score for r in results)
    best = sum(r.max_score for r in results)
    lines.append(
        f"public checks: {got:g}/{best:g} points, {sum(r.passed for r in results)}/{len(results)} passed"
    )
    return "\n".join(lines)


def check_namespace(
    namespace: dict[str, Any], part: str | None = None, ingested: Any = None
) -> list[CheckResult]:
    """The public checks over a namespace that holds the learner's definitions."""
    from grader.checking import InProcessSubmission, run_checks

    submission = InProcessSubmission(namespace, ingested)
    return run_checks(submission, public_only=True, parts=[part] if part else None)


def check(part: str | None = None) -> list[CheckResult]:
    """Run the public checks on the calling notebook's namespace and print a summary."""
    namespace = sys._getframe(1).f_globals
    results = check_namespace(namespace, part)
    print(format_summary(results))
    return results


def check_notebook(path: Path, part: str | None = None) -> list[CheckResult]:
    """Load a notebook's graded code (as the grader keeps it) here and run the public checks."""
    from grader.ingest import ingest

    ingested = ingest(path)
    namespace: dict[str, Any] = {"__name__": "submission"}
    exec(compile(ingested.source, str(path), "exec"), namespace)
    return check_namespace(namespace, part, ingested)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from grader.ingest import NotebookError

    parser = argparse.ArgumentParser(
        prog="python -m grader.authoring.selfcheck",
        description="Run the public checks on your notebook.",
    )
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--part", help="only this graded part, e.g. create_example")
    args = parser.parse_args(argv)
    try:
        results = check_notebook(args.notebook, args.part)
    except NotebookError as error:
        print(f"selfcheck: {error.message}", file=sys.stderr)
        return 2
    print(format_summary(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
