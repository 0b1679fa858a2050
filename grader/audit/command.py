"""``grader audit``: the command line of the mutation audit (``grader.cli`` hands the verb here)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: The share of non-equivalent mutants the checks must kill, by default.
MIN_KILLED = 0.95


def add_command(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``audit`` to the ``grader`` command's subparsers."""
    audit = commands.add_parser(
        "audit",
        parents=parents,
        help="mutation audit: do the checks catch small mistakes in the reference solution?",
        description="Mutate the graded parts of the assignment's solution with the standard "
        "operators (arithmetic, comparison and boundary swaps, constants, removed statements, "
        "swapped arguments, keyword values, in place vs copy, a dropped rng, ...), grade every "
        "mutant with the checks in warm processes, and report per part how many the checks "
        "killed, how many survived and how many are equivalent (the same probe replies as the "
        "reference on every seed, or listed in the assignment's audit.yaml). Exit 1 when fewer "
        "than --min-killed of the non-equivalent mutants are killed.",
    )
    audit.add_argument(
        "--seeds",
        type=int,
        default=5,
        metavar="N",
        help="hidden seeds every mutant is graded on (default: %(default)s)",
    )
    audit.add_argument(
        "--extra-seeds",
        type=int,
        default=3,
        metavar="K",
        help="more seeds for the survivors (default: %(default)s)",
    )
    audit.add_argument(
        "--min-killed",
        type=float,
        default=MIN_KILLED,
        metavar="F",
        help="the share of non-equivalent mutants to kill (default: %(default)s)",
    )
    audit.add_argument(
        "--collateral-seeds",
        type=int,
        default=1,
        metavar="K",
        help="on the first K seeds also run the checks of the parts that use the mutated one, "
        "to find mistakes that cost another part's points (default: %(default)s; 0: never)",
    )
    audit.add_argument("--json", type=Path, metavar="FILE", help="write everything found here")
    audit.add_argument(
        "--training",
        action="store_true",
        help="also run the training checks on the mutants they judge (slow)",
    )
    audit.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=2,
        metavar="N",
        help="grading processes (default: %(default)s)",
    )
    audit.add_argument("--parts", metavar="P,...", help="only these graded parts' mutants")
    audit.add_argument(
        "--sample",
        type=float,
        default=1.0,
        metavar="F",
        help="grade only this share of the mutants, a fixed sample chosen by each mutant's id "
        "(the same on every run; for CI). Default: all",
    )
    audit.add_argument(
        "--first-kill",
        action="store_true",
        help="stop grading a mutant at the first check that kills it: the same verdicts and "
        "kill rate in about half the time (for CI); the report then names one killing check "
        "per mutant",
    )
    audit.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="a mutant's limit per seed (default: 10x the reference's, >= 60 s)",
    )
    audit.set_defaults(handler=main)  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from grader.assignment import AssignmentError, resolve
    from grader.audit import report
    from grader.audit.pool import AuditFault
    from grader.audit.run import Settings, run_audit
    from grader.audit.verdicts import classify

    if (
        args.seeds < 1
        or args.extra_seeds < 0
        or args.collateral_seeds < 0
        or args.jobs < 1
        or not 0 <= args.min_killed <= 1
        or not 0 < args.sample <= 1
    ):
        print("grader audit: --seeds and -j must be at least 1, --extra-seeds and --collateral-seeds "
            "at least 0, "
              "--min-killed within 0..1, --sample within (0, 1]", file=sys.stderr)  # fmt: skip
        return 2
    try:
        assignment = resolve(args.assignment)
        settings = Settings(
            seeds=args.seeds,
            extra_seeds=args.extra_seeds,
            collateral_seeds=min(args.collateral_seeds, args.seeds),
            jobs=args.jobs,
            training=args.training,
            parts=[p.strip() for p in args.parts.split(",") if p.strip()] if args.parts else None,
            seconds_per_seed=args.timeout,
            first_kill=args.first_kill,
            sample=args.sample,
        )
        run = run_audit(assignment, settings)
    except AssignmentError as error:
        print(f"grader audit: {error}", file=sys.stderr)
        return 2
    except AuditFault as error:
        print(f"grader audit: {error}", file=sys.stderr)
        return 3
    doc = report.document(run, classify(run), args.min_killed)
    print(report.table(doc), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    return 0 if doc["passed"] else 1
