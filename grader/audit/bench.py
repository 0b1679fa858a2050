"""``grader bench``: the reference graded over many hidden seeds, with each check's score and the
figures it measured (``Submission.measured``: a trained model's accuracy, a model's cost).

Where a check's bands and limits come from: set them from the spread printed here, with a margin.
A check whose reference score moves with the seed shows here before a learner meets it. The
gradings run in the audit's warm processes (``grader.audit.pool``), one seed per task, so ``-j``
grades seeds side by side and a grading that hangs is stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from grader.audit.run import TRAINING, Progress, audit_seeds


def add_command(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the ``grader`` command's subparsers."""
    bench = commands.add_parser(
        "bench",
        parents=parents,
        help="grade the reference over N hidden seeds; print each check's score and measures",
        description="Grade the assignment's reference solution on N hidden seeds (the audit's "
        "fixed sequence: the same on every run) and print, per check, its score on every seed "
        "and the spread (min, median, max) of each figure it measured, such as a trained "
        "model's accuracy: the figures a check's bands and limits are set from. Exit 1 when the "
        "reference loses a point on some seed.",
    )
    bench.add_argument(
        "--seeds",
        type=int,
        default=5,
        metavar="N",
        help="hidden seeds to grade the reference on (default: %(default)s)",
    )
    bench.add_argument(
        "--parts",
        metavar="P,...",
        help="only these graded parts' checks (default: all, training included: minutes a seed)",
    )
    bench.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=2,
        metavar="N",
        help="grading processes, a seed each (default: %(default)s)",
    )
    bench.add_argument("--json", type=Path, metavar="FILE", help="write the rows here")
    bench.set_defaults(handler=main)


def rows(gradings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per check, in grading order: its score on each seed and each figure's spread."""
    found: dict[str, dict[str, Any]] = {}
    for graded in gradings:
        for check in graded.get("checks", []):
            row = found.setdefault(
                check["name"], {"check": check["name"], "max_score": check["max_score"],
                                "scores": [], "figures": {}},
            )  # fmt: skip
            row["scores"].append(check["score"])
            for what, value in check.get("figures", {}).items():
                row["figures"].setdefault(what, []).append(value)
    for row in found.values():
        row["figures"] = {
            what: {"min": min(v), "median": statistics.median(v), "max": max(v), "values": v}
            for what, v in row["figures"].items()
        }
    return list(found.values())


def table(found: list[dict[str, Any]], seeds: int) -> str:
    lines = []
    for row in found:
        low, top = min(row["scores"]), row["max_score"]
        mark = "ok " if low >= top else "LOST"
        lines.append(f"{mark} {low:g}..{max(row['scores']):g}/{top:g}  {row['check']}")
        for what, spread in row["figures"].items():
            lines.append(
                f"       {what}: min {spread['min']:.4g}, median {spread['median']:.4g}, "
                f"max {spread['max']:.4g} (over {len(spread['values'])} of {seeds} seeds)"
            )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from grader.assignment import AssignmentError, resolve
    from grader.audit.pool import AuditFault, Pool, Task
    from grader.checking import probe_timeout

    if args.seeds < 1 or args.jobs < 1:
        print("grader bench: --seeds and -j must be at least 1", file=sys.stderr)
        return 2
    try:
        assignment = resolve(args.assignment)
        order = list(assignment.check_order)
        parts = [p.strip() for p in args.parts.split(",")] if args.parts else order
        unknown = sorted(set(parts) - set(order))
        if unknown:
            raise AssignmentError(f"no part {', '.join(unknown)}; the parts are {', '.join(order)}")
    except AssignmentError as error:
        print(f"grader bench: {error}", file=sys.stderr)
        return 2
    parts = [p for p in order if p in parts]
    seeds, _ = audit_seeds(args.seeds, 0)
    limit = 600.0 + (probe_timeout("train") if TRAINING in parts else 0.0)
    progress = Progress(True, "grader bench")
    progress.add(len(seeds), "reference")
    pool = Pool(assignment.folder, min(args.jobs, len(seeds)))
    try:
        tasks = [Task(i, None, [(seed, parts)], limit, limit) for i, seed in enumerate(seeds)]
        outcomes = pool.run(tasks, progress.seed)
    except AuditFault as error:
        print(f"grader bench: {error}", file=sys.stderr)
        return 3
    finally:
        pool.close()
        progress.close()
    gradings, faults = [], []
    for i in range(len(seeds)):
        outcome = outcomes[i]
        done = [r for r in outcome.seeds if "error" not in r]
        gradings += done
        if outcome.ended != "done" or not done:
            errors = [r["error"] for r in outcome.seeds if "error" in r]
            faults.append(f"seed {seeds[i]}: {outcome.note or '; '.join(errors) or outcome.ended}")
    found = rows(gradings)
    print(f"grader bench: {assignment.name}, the reference on {len(seeds)} hidden seed(s)")
    print(table(found, len(seeds)))
    for fault in faults:
        print(f"not graded: {fault}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"assignment": assignment.name, "seeds": seeds, "checks": found, "faults": faults}
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    lost = any(min(row["scores"]) < row["max_score"] for row in found)
    return 1 if lost or faults else 0
