"""What ``./dev grade`` grades: each installed assignment's example submissions, into its own folder.

Why: a course may install several assignments at once (``assignments/*/``, entry points), and
``grader grade`` grades against one of them (``--assignment NAME`` when there are several). So
the demo grades each one's examples with that assignment named: its manifest's ``examples`` (a
folder of example notebooks), else its solution and its learner notebook (full marks and an
untouched one). One assignment installed: into ``OUT`` as before; several: ``OUT/<name>``.

``python -m grader.authoring.examples [--assignment NAME] [--out DIR]`` prints one line per grading,
tab-separated: the assignment's folder, the output folder, then the submissions; the ``dev`` script
runs ``grader grade`` on each line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from grader import environment
from grader.assignment import Assignment, AssignmentError, discover, resolve


@dataclass(frozen=True)
class ExampleGrading:
    """One ``grader grade`` run: ``submissions`` of ``assignment`` into ``out``."""

    assignment: Assignment
    out: Path
    submissions: tuple[Path, ...]


def examples_of(assignment: Assignment) -> tuple[Path, ...]:
    """The assignment's example submissions (its ``examples``, else solution and learner)."""
    if assignment.examples is not None and assignment.examples.is_dir():
        return (assignment.examples,)
    return tuple(p for p in (assignment.solution, assignment.learner) if p and p.is_file())


def plan(out: Path, choice: str | None = None) -> list[ExampleGrading]:
    """The gradings of ``./dev grade``: ``choice`` (else ``$GRADER_ASSIGNMENT``) alone into
    ``out``, else every installed assignment with examples (into ``out/<name>`` when there are
    several)."""
    choice = choice or environment.ASSIGNMENT.get()
    chosen = [resolve(choice)] if choice else list(discover().values())
    if not chosen:
        resolve()  # raises the message that says where assignments are looked for
    several = len(chosen) > 1
    gradings = [ExampleGrading(a, out / a.name if several else out, examples_of(a)) for a in chosen]
    return [g for g in gradings if g.submissions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.authoring.examples")
    parser.add_argument("--assignment", metavar="NAME", help="only this assignment (name/folder)")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    try:
        gradings = plan(args.out, args.assignment)
    except AssignmentError as error:
        print(f"dev grade: {error}", file=sys.stderr)
        return 2
    if not gradings:
        print("dev grade: no installed assignment has example submissions", file=sys.stderr)
        return 2
    for grading in gradings:
        fields = (grading.assignment.folder, grading.out, *grading.submissions)
        print("\t".join(map(str, fields)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
