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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
