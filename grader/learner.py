"""The learner's ``grader`` command, the one the learner bundle installs: ``grader check NOTEBOOK``
(the public checks, in this process) and ``grader submit`` (to the course server).

Why a command of its own: the bundle ships only what the self-check and the submit client need
(``grader release``), so the instructor's ``grader`` (``grader.cli``: grading, the sandbox, the
server) cannot run there; the learner's two subcommands take the same arguments under the same
names, so the notebook, the bundle's README, the course pages and every message say one thing:
``grader check`` and ``grader submit``. ``python -m grader`` runs it too in the bundle. Nothing
heavy is imported before a subcommand runs: ``grader submit`` needs the standard library only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PROG = "grader"


def _check(args: argparse.Namespace) -> int:
    from grader.authoring.selfcheck import main as check

    argv = [str(args.notebook)] + (["--part", args.part] if args.part else [])
    argv += ["--training"] if args.training else []
    return check(argv + (["--assignment", args.assignment] if args.assignment else []))


def add_check(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``check NOTEBOOK [--part P]``: the learner's command and the instructor's take it alike
    (``parents`` brings ``--assignment``)."""
    check = commands.add_parser(
        "check",
        parents=parents,
        help="run the public checks on your notebook",
        description="Run the public checks on NOTEBOOK (as saved) here and print a summary. "
        "The grader runs more checks than these. From inside the notebook: "
        "`from grader.authoring.selfcheck import check; check()`.",
    )
    check.add_argument("notebook", type=Path, metavar="NOTEBOOK")
    check.add_argument("--part", help="only this graded part (default: all)")
    check.add_argument(
        "--training",
        action="store_true",
        help="also train your model here with the training checks, where this install has them",
    )
    check.set_defaults(handler=_check)


def build_parser() -> argparse.ArgumentParser:
    from grader import submit

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check your notebook with the public checks, then submit it for grading.",
    )
    choose = argparse.ArgumentParser(add_help=False)
    choose.add_argument(
        "--assignment",
        metavar="NAME",
        help="the assignment's name or folder (default: the only one in this bundle)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_check(commands, [choose])
    sender = commands.add_parser(
        "submit",
        help="submit your notebook to the course server and wait for the grade",
        description="Upload NOTEBOOK to the course server with your sign-in link (save it once "
        "with --link) and follow it: queued -> grading -> graded, then the score.",
    )
    submit.add_arguments(sender)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
