"""The ``grader`` command line: one subcommand per lifecycle stage."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from grader import __version__


def _assignment(args: argparse.Namespace) -> Any:
    """The assignment ``--assignment`` names (default: the only one); AssignmentError if none."""
    from grader.assignment import resolve

    return resolve(args.assignment)


def _cmd_generate(args: argparse.Namespace) -> int:
    from grader.assignment import AssignmentError
    from grader.authoring import assign

    try:
        chosen = _assignment(args)
        args.solution = args.solution or chosen.solution
        args.out = args.out or chosen.learner
        if args.solution is None or args.out is None:
            raise AssignmentError(
                f"assignment {chosen.name!r} declares no solution/learner notebook: give "
                "--solution and --out"
            )
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
    except (assign.AssignError, AssignmentError) as error:
        print(f"grader generate: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    """Batch grading (grader.batch): discover, grade in parallel or on Dask, journal, summarise."""
    from grader import batch
    from grader.assignment import AssignmentError
    from grader.preflight import refusal

    if args.jobs is not None and args.jobs < 1:
        print("grader grade: -j must be at least 1", file=sys.stderr)
        return 2
    try:
        chosen = _assignment(args)
    except AssignmentError as error:
        print(f"grader grade: {error}", file=sys.stderr)
        return 2
    items, notes = batch.discover(args.submissions)
    for note in notes:
        print(f"grader grade: {note}", file=sys.stderr)
    if not items:
        print(
            "grader grade: no submissions found in " + ", ".join(map(str, args.submissions)),
            file=sys.stderr,
        )
        return 2
    refused = refusal(args.sandbox, "grader grade", scheduler=args.scheduler)
    if refused is not None:
        print(f"grader grade: {refused}", file=sys.stderr)
        return 2
    where = f"Dask cluster {args.scheduler}" if args.scheduler else f"-j {args.jobs or 'cores'}"
    print(
        f"grader grade: {len(items)} submission(s) of {chosen.name} -> {args.out} ({where})",
        flush=True,
    )

    def waiting(holder: batch.LockHolder) -> None:
        print(
            f"grader grade: {args.out} is in use by {holder.describe()}; waiting for it to finish"
        )

    from grader.secret import SecretError

    try:
        summary = batch.run_batch(
            items,
            args.out,
            jobs=args.jobs,
            scheduler=args.scheduler,
            force=args.force,
            sandbox_mode=args.sandbox,
            memory_mb=args.memory_mb,
            timeout=args.timeout,
            wait=args.wait,
            on_wait=waiting,
            assignment=chosen,  # resolved once, above: every job carries it
        )
    except (batch.OutDirBusy, SecretError) as error:
        print(f"grader grade: {error}", file=sys.stderr)
        return 2
    except batch.BatchInterrupted as stop:
        print(
            f"\ngrader grade: interrupted; kept {stop.summary.line()}. "
            "Rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130
    except OSError as error:  # e.g. the Dask scheduler cannot be reached
        print(f"grader grade: {error}", file=sys.stderr)
        return 2
    print(f"{summary.line()} -> {args.out / batch.INDEX}", flush=True)
    from grader.similarity.command import write_for_batch  # the class summary's section

    try:
        print(write_for_batch(items, args.out, chosen), flush=True)
    except (OSError, ValueError) as error:  # the grading stands: only the section is missing
        print(f"grader grade: similarity not written: {error}", file=sys.stderr)
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from grader.assignment import AssignmentError
    from grader.authoring import build_release

    try:
        written = build_release(args.out, _assignment(args))
    except AssignmentError as error:
        print(f"grader release: {error}", file=sys.stderr)
        return 2
    print(f"wrote the learner bundle to {args.out} ({len(written)} files)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from grader.batch.common import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
    from grader.batch.discovery import add_submissions_argument
    from grader.sandbox.isolation import MODES, sandbox_help

    parser = argparse.ArgumentParser(
        prog="grader",
        description="Course harness: generate the learner notebook, grade submitted notebooks in "
        "a sandbox, release the learner bundle, self-check. Each command works on one assignment "
        "(--assignment NAME or FOLDER; by default the only one installed).",
    )
    choose = argparse.ArgumentParser(add_help=False)
    choose.add_argument(
        "--assignment",
        metavar="NAME",
        help="the assignment: a name among those installed (assignments/*/assignment.yaml, or "
        "the entry points grader.assignments) or a folder holding assignment.yaml (default: the "
        "only one installed)",
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate",
        parents=[choose],
        help="write the learner notebook from the solution notebook",
        description="Cut the solution regions out of the solution notebook and write the learner "
        "notebook (outputs cleared, tags and cell ids kept). Writes nothing on bad input.",
    )
    generate.add_argument(
        "--solution",
        type=Path,
        help="solution notebook (default: the assignment's, solutions/<name>.ipynb)",
    )
    generate.add_argument(
        "--out",
        type=Path,
        help="learner notebook to write (default: the assignment's, assignments/<name>.ipynb)",
    )
    generate.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming the first differing cell if OUT is out of date",
    )
    generate.set_defaults(handler=_cmd_generate)

    grade = commands.add_parser(
        "grade",
        parents=[choose],
        help="grade submitted notebooks in a sandbox; write results.json and report.html",
        description="Grade notebooks, folders and LMS zip exports against the hidden checks, "
        "several at once (-j) or on a Dask cluster (--scheduler). Learner code runs in a sandboxed "
        "worker; verdicts are computed outside it. Writes OUT/<submission id>/results.json "
        "(Gradescope schema) and report.html, OUT/gradebook.csv and the class summary "
        "OUT/index.html, rebuilt from OUT/journal.jsonl; a rerun skips what is already graded. "
        "Exits 0 when grading ran, whatever the scores.",
    )
    add_submissions_argument(grade)
    grade.add_argument(
        "--out", type=Path, default=Path("reports"), help="output folder (default: %(default)s)"
    )
    grade.add_argument(
        "--sandbox",
        choices=MODES,
        default="auto",
        help=sandbox_help() + ". Checked here before grading, except with --scheduler (each "
        "Dask worker checks on its own machine)",
    )
    grade.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="grade N submissions at once in local worker processes (default: CPU cores); every "
        "sandbox gets the same 2 TensorFlow threads whatever N is, so that -j never changes a "
        "score",
    )
    grade.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786, instead of locally",
    )
    grade.add_argument(
        "--force",
        action="store_true",
        help="regrade everything, even submissions already in OUT/journal.jsonl",
    )
    grade.add_argument(
        "--wait",
        action="store_true",
        help="when another run is writing into OUT, wait for it to finish, then start (by "
        "default a second run on the same OUT refuses at once with exit code 2)",
    )
    grade.add_argument(
        "--memory-mb",
        type=int,
        default=DEFAULT_MEMORY_MB,
        metavar="MB",
        help="address-space limit of each sandboxed worker (default: %(default)s)",
    )
    grade.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="wall-clock limit of one grading, here or on a Dask worker (default: %(default)s). "
        "A grading cut short gets the status timeout, never a score, and is graded again on the "
        "next run (as are error and killed rows); crashed (the learner's code crashed) is a "
        "verdict and kept",
    )
    grade.set_defaults(handler=_cmd_grade)

    from grader.learner import add_check  # the learner's own command, the same verb

    add_check(commands, [choose])

    release = commands.add_parser(
        "release",
        parents=[choose],
        help="build the learner bundle (learner notebook + self-check, no hidden checks)",
        description="Write the learner notebook and what the self-check needs into OUT. Hidden "
        "checks, solutions and the reference are left out.",
    )
    release.add_argument("--out", type=Path, required=True)
    release.set_defaults(handler=_cmd_release)

    from grader.audit.command import add_command as add_audit  # the mutation audit

    add_audit(commands, [choose])
    from grader.audit.bench import add_command as add_bench  # the reference over many seeds

    add_bench(commands, [choose])

    from grader.similarity.command import add_command as add_similarity  # similar submissions

    add_similarity(commands, [choose])

    # --- the course server (grader.server): roster, serve, regrade --------------------------
    from grader.server.commands import add_commands

    add_commands(commands)
    # ------------------------------------------------------------------------------------------
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
