"""The learner's self-check: the public checks, in the learner's own process.

From a notebook, after running its cells::

    from grader.authoring.selfcheck import check
    check()                   # every part
    check("a_part")           # one part

From a terminal: ``grader check NOTEBOOK`` (``--assignment NAME`` when several are installed). Only
public checks run here; grading runs them all in a sandbox.

What the learner reads is their own output and the summary: the lines TensorFlow's C++ runtime
writes straight to the process's standard error while it starts (CUDA, oneDNN, absl notices) are
held back while the checks run and the notebook loads (``grader.results.learner_output``); any
other line written there is passed on when they end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader.assignment import Assignment, AssignmentError, resolve
from grader.checking import CheckResult
from grader.results.learner_output import learner_output


@contextlib.contextmanager
def library_lines_held_back() -> Iterator[None]:
    """Standard error (the file descriptor: C++ libraries write to it directly) goes to a
    temporary file inside; what is not a library's own line is written back at the end."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to hold back (a detached process)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = learner_output(held.read().decode("utf-8", "replace"))
            if kept:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.write(kept)
                    sys.stderr.flush()


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
    namespace: dict[str, Any],
    part: str | None = None,
    ingested: Any = None,
    assignment: Assignment | str | None = None,
) -> list[CheckResult]:
    """The public checks over a namespace that holds the learner's definitions."""
    from grader.checking import InProcessSubmission, run_checks

    submission = InProcessSubmission(namespace, ingested, resolve(assignment))
    with library_lines_held_back():
        return run_checks(submission, public_only=True, parts=[part] if part else None)


def check(part: str | None = None, assignment: str | None = None) -> list[CheckResult]:
    """Run the public checks on the calling notebook's namespace and print a summary."""
    namespace = sys._getframe(1).f_globals
    results = check_namespace(namespace, part, assignment=assignment)
    print(format_summary(results))
    return results


def check_notebook(
    path: Path, part: str | None = None, assignment: Assignment | str | None = None
) -> list[CheckResult]:
    """Load a notebook's graded code (as the grader keeps it) here and run the public checks."""
    from grader.ingest import ingest

    chosen = resolve(assignment)
    ingested = ingest(path, chosen.ingest_rules())
    namespace: dict[str, Any] = {"__name__": "submission"}
    with library_lines_held_back():  # the notebook's imports start TensorFlow
        exec(compile(ingested.source, str(path), "exec"), namespace)
    return check_namespace(namespace, part, ingested, chosen)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from grader.ingest import NotebookError

    parser = argparse.ArgumentParser(
        prog="grader check",
        description="Run the public checks on your notebook.",
    )
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--part", help="only this graded part (default: all)")
    parser.add_argument(
        "--assignment",
        metavar="NAME",
        help="the assignment's name or folder (default: the only one installed)",
    )
    args = parser.parse_args(argv)
    try:
        chosen = resolve(args.assignment)
        if args.part and args.part not in chosen.check_order:
            raise AssignmentError(
                f"no part {args.part!r} in {chosen.name}: parts are {', '.join(chosen.part_names)}"
            )
        results = check_notebook(args.notebook, args.part, chosen)
    except NotebookError as error:
        print(f"grader check: {error.message}", file=sys.stderr)
        return 2
    except AssignmentError as error:
        print(f"grader check: {error}", file=sys.stderr)
        return 2
    print(format_summary(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
