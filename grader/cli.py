"""The ``grader`` command line: one subcommand per lifecycle stage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import __version__


def _cmd_generate(args: argparse.Namespace) -> int:
    from grader import assign

    try:
        if args.check:
            difference = assign.check(args.solution, args.out)
            if difference is None:
                print(f"{args.out} is up to date with {args.solution}")
                return 0
            print(
                f"{args.out} is out of date: cell {difference.cell} {difference.reason}.\n"
                "Run `grader generate` to regenerate it.",
                file=sys.stderr,
            )
            return 1
        assign.generate(args.solution, args.out)
    except assign.AssignError as error:
        print(f"grader generate: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


def _notebooks(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        else:
            found.append(path)
    return found


def _cmd_grade(args: argparse.Namespace) -> int:
    from grader.grade import grade_notebook, write_outputs

    notebooks = _notebooks(args.submissions)
    if not notebooks:
        print(
            "grader grade: no notebooks found in " + ", ".join(map(str, args.submissions)),
            file=sys.stderr,
        )
        return 2
    if args.sandbox == "bwrap":
        from grader.sandbox import bwrap_status

        works, why = bwrap_status()
        if not works:
            print(
                f"grader grade: --sandbox bwrap asked for, but bubblewrap does not work here: {why}",
                file=sys.stderr,
            )
            return 2
    for path in notebooks:
        result = grade_notebook(path, sandbox_mode=args.sandbox)
        folder = write_outputs(result, args.out)
        print(
            f"{result.submission_id}: {result.score:g}/{result.max_score:g} "
            f"({result.extra.get('isolation')}, {result.execution_time:.0f} s) -> {folder / 'report.html'}",
            flush=True,
        )
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from grader.notebook import NotebookError
    from grader.selfcheck import check_notebook, format_summary

    try:
        results = check_notebook(args.notebook, args.part)
    except NotebookError as error:
        print(f"grader check: {error.message}", file=sys.stderr)
        return 2
    print(format_summary(results))
    return 0 if all(r.passed for r in results) else 1


def _cmd_release(args: argparse.Namespace) -> int:
    from grader.release import build_release

    written = build_release(args.out)
    print(f"wrote the learner bundle to {args.out} ({len(written)} files)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from grader import assign

    parser = argparse.ArgumentParser(
        prog="grader",
        description="Autograder for the Object Localization with TensorFlow course.",
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate",
        help="write the learner notebook from the solution notebook",
        description="Cut the solution regions out of the solution notebook and write the learner "
        "notebook (outputs cleared, tags and cell ids kept). Writes nothing on bad input.",
    )
    generate.add_argument(
        "--solution",
        type=Path,
        default=assign.SOLUTION_NOTEBOOK,
        help="solution notebook (default: %(default)s)",
    )
    generate.add_argument(
        "--out",
        type=Path,
        default=assign.LEARNER_NOTEBOOK,
        help="learner notebook to write (default: %(default)s)",
    )
    generate.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming the first differing cell if OUT is out of date",
    )
    generate.set_defaults(handler=_cmd_generate)

    grade = commands.add_parser(
        "grade",
        help="grade submitted notebooks in a sandbox; write results.json and report.html",
        description="Grade each notebook (or every notebook in a folder) against the hidden checks. "
        "Learner code runs in a sandboxed worker; verdicts are computed outside it. Writes "
        "OUT/<submission id>/results.json (Gradescope schema) and report.html. Exits 0 when grading "
        "ran, whatever the scores.",
    )
    grade.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        metavar="SUBMISSION",
        help="a notebook or a folder of notebooks",
    )
    grade.add_argument(
        "--out", type=Path, default=Path("reports"), help="output folder (default: %(default)s)"
    )
    grade.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="isolation: bubblewrap, rlimits only, or auto (bubblewrap when it works here; default)",
    )
    grade.set_defaults(handler=_cmd_grade)

    check = commands.add_parser(
        "check",
        help="run the public checks on your notebook (self-check)",
        description="Run the public checks on a notebook in this process and print a summary. "
        "From inside the notebook: `from grader.selfcheck import check; check()`.",
    )
    check.add_argument("notebook", type=Path)
    check.add_argument("--part", help="only this graded part, e.g. create_example")
    check.set_defaults(handler=_cmd_check)

    release = commands.add_parser(
        "release",
        help="build the learner bundle (learner notebook + self-check, no hidden checks)",
        description="Write the learner notebook and what the self-check needs into OUT. Hidden "
        "checks, solutions and the reference are left out.",
    )
    release.add_argument("--out", type=Path, required=True)
    release.set_defaults(handler=_cmd_release)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
