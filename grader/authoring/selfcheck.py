"""The learner's self-check: the public checks, in the learner's own process.

From a notebook, after running its cells::

    from grader.authoring.selfcheck import check
    check()                   # every part
    check("a_part")           # one part

From a terminal: ``grader check NOTEBOOK`` (``--assignment NAME`` when several are installed). Only
public checks run here; grading runs them all in a sandbox. ``--training`` also trains the model
here with the assignment's training checks (its ``groups_after`` groups), where this install has
them: a course may ship a public one; a hidden one is found only beside the grader's own copy of
the assignment (an instructor's checkout), where it uses the hidden inputs grading would use. The
learner bundle ships no hidden check, so there it says why it cannot train and exits 2.

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


class NoTrainingCheck(AssignmentError):
    """``--training`` asked, and this install has no training check of the assignment."""


def format_summary(results: list[CheckResult], what: str = "public checks") -> str:
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
        f"{what}: {got:g}/{best:g} points, {sum(r.passed for r in results)}/{len(results)} passed"
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


def train_namespace(
    namespace: dict[str, Any], ingested: Any, assignment: Assignment
) -> list[CheckResult]:
    """The assignment's training checks (its ``groups_after`` groups, public or, where this
    install has them, hidden) over the learner's definitions, training the model here; with the
    hidden inputs grading would use for this source. NoTrainingCheck when there are none."""
    from grader.checking import InProcessSubmission, run_checks

    groups = list(assignment.groups_after)
    submission = InProcessSubmission(namespace, ingested, assignment)
    with library_lines_held_back(), _grading_seed(ingested, assignment):
        results = run_checks(submission, parts=groups) if groups else []
    if not results:
        raise NoTrainingCheck(
            f"{assignment.name} has no training check here: "
            + (
                "its checks of " + ", ".join(groups) + " are hidden (they train on the grader's "
                "data and score hidden test images), and this copy of the assignment does not "
                "ship them. Submit your notebook to have your model trained and scored."
                if groups
                else "it grades no training (its manifest's groups_after is empty)."
            )
        )
    return results


def check(part: str | None = None, assignment: str | None = None) -> list[CheckResult]:
    """Run the public checks on the calling notebook's namespace and print a summary."""
    namespace = sys._getframe(1).f_globals
    results = check_namespace(namespace, part, assignment=assignment)
    print(format_summary(results))
    return results


@contextlib.contextmanager
def _grading_seed(ingested: Any, assignment: Assignment) -> Iterator[None]:
    """Where the hidden checks are here, the hidden seed grading would use for this source (the
    secret is read only then: the learner bundle ships neither the checks nor ``grader.secret``)."""
    if not (assignment.checks_dir / "hidden").is_dir():
        yield
        return
    from grader import secret

    seed = secret.load_hidden_seed()
    if ingested is not None:
        seed = secret.submission_seed(seed, ingested.source, assignment=assignment.name)
    with secret.using_seed(seed):
        yield


def check_notebook(
    path: Path,
    part: str | None = None,
    assignment: Assignment | str | None = None,
    *,
    training: bool = False,
) -> list[CheckResult]:
    """Load a notebook's graded code (as the grader keeps it) here and run the public checks;
    with ``training``, then the training checks (:func:`train_namespace`)."""
    from grader.ingest import ingest

    chosen = resolve(assignment)
    ingested = ingest(path, chosen.ingest_rules())
    namespace: dict[str, Any] = {"__name__": "submission"}
    with library_lines_held_back():  # the notebook's imports start TensorFlow
        exec(compile(ingested.source, str(path), "exec"), namespace)
    if training and part in chosen.groups_after:
        return train_namespace(namespace, ingested, chosen)
    results = check_namespace(namespace, part, ingested, chosen)
    return results + (train_namespace(namespace, ingested, chosen) if training else [])


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
    parser.add_argument(
        "--training",
        action="store_true",
        help="also train your model here with the training checks, where this install has them "
        "(minutes)",
    )
    args = parser.parse_args(argv)
    try:
        chosen = resolve(args.assignment)
        if args.part and args.part not in chosen.check_order:
            raise AssignmentError(
                f"no part {args.part!r} in {chosen.name}: parts are {', '.join(chosen.part_names)}"
            )
        results = check_notebook(args.notebook, args.part, chosen, training=args.training)
    except NotebookError as error:
        print(f"grader check: {error.message}", file=sys.stderr)
        return 2
    except AssignmentError as error:
        print(f"grader check: {error}", file=sys.stderr)
        return 2
    groups = set(chosen.groups_after) if args.training else set()
    public = [r for r in results if r.part not in groups]
    trained = [r for r in results if r.part in groups]
    if public or not trained:
        print(format_summary(public))
    if trained:
        print(format_summary(trained, "training checks (here, not a grade)"))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
