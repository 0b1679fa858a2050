"""The audit's output: a table for the author, the JSON with everything, the verdict.

The table (stdout): per part, the mutants, how many were killed, survived or shown equivalent, and
the killed share of the non-equivalent ones; a total line; each survivor with its part, what was
changed and the changed line before and after; mutants that cost another part's checks; checks
whose verdict depends on the seed; the smallest margins to a probe's timeout. The mutated lines
are the reference's code: the table and the JSON are for the author, never for learners.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.audit.run import AuditRun
from grader.audit.verdicts import (
    KILLED,
    SURVIVED,
    Verdict,
    reference_failures,
    seed_dependence,
    summary,
    timeout_margins,
    unused_entries,
)

#: How many timeout margins the table shows (the JSON has all).
MARGINS_SHOWN = 5


def document(run: AuditRun, verdicts: list[Verdict], min_killed: float) -> dict[str, Any]:
    """Everything the audit found, as JSON-ready data."""
    rows = summary(verdicts, run.reference.assignment.part_names)
    for index, mutant in enumerate(run.mutants):  # where the audit's time went
        seconds = sum(r.get("seconds", 0.0) for r in run.outcomes[index].seeds)
        for name in (mutant.part, "total"):
            rows[name]["grading_seconds"] = round(rows[name].get("grading_seconds", 0) + seconds, 1)
    total = rows.get("total", {"killed_fraction": 1.0})
    by_seed = seed_dependence(run, verdicts)
    return {
        "assignment": run.reference.assignment.name,
        "seeds": run.seeds,
        "extra_seeds": run.extra_seeds,
        "training": run.training,
        "runtime_seconds": round(run.seconds, 1),
        "mutants_generated": run.generated,
        "min_killed": min_killed,
        "killed_fraction": total["killed_fraction"],
        "passed": total["killed_fraction"] >= min_killed,
        "parts": rows,
        "mutants": [v.as_json() for v in verdicts],
        "seed_dependent_checks": by_seed["by_seed"],
        "run_to_run_checks": by_seed["run_to_run"],
        "timeout_margins": timeout_margins(run),
        "reference_failures": reference_failures(run),
        "equivalents_file_unused": unused_entries(run, verdicts),
    }


def killed_ids(path: Path | str) -> set[str]:
    """The ids of the killed mutants in an audit's JSON (for ``grader.mutation.mutants_of``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {m["id"] for m in data.get("mutants", []) if m.get("status") == KILLED}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def table(doc: dict[str, Any]) -> str:
    """The text the author reads."""
    extra = f" (+{len(doc['extra_seeds'])} for survivors)" if doc["extra_seeds"] else ""
    lines = [
        f"grader audit: {doc['assignment']}, {len(doc['seeds'])} hidden seed(s){extra}"
        + (", with training" if doc["training"] else "")
        + f", {len(doc['mutants'])} mutants"
        + (
            f" (a fixed sample of the {doc['mutants_generated']})"
            if doc.get("mutants_generated", 0) > len(doc["mutants"])
            else ""
        )
        + f" in {_clock(doc['runtime_seconds'])}",
        "",
        f"{'part':<22}{'mutants':>8}{'killed':>8}{'survived':>10}{'equivalent':>12}{'killed %':>10}",
    ]
    for name, row in doc["parts"].items():
        if name == "total":
            lines.append("-" * 70)
        lines.append(
            f"{name:<22}{row['mutants']:>8}{row[KILLED]:>8}{row[SURVIVED]:>10}"
            f"{row['equivalent']:>12}{100 * row['killed_fraction']:>10.1f}"
        )
    survivors = [m for m in doc["mutants"] if m["status"] == SURVIVED]
    if survivors:
        lines += ["", f"Survivors ({len(survivors)}): the checks saw a difference and passed it"]
        for m in survivors:
            lines.append(f"  {m['part']}: {m['description']}  [{m['id']}]")
            lines.append(f"      {m['original']}")
            lines.append(f"   -> {m['mutated']}")
            diff = m.get("difference")
            if diff:
                lines.append(f"      first difference: {diff['probe']} ({diff['why']})")
            for error in m["errors"][:1]:
                lines.append(f"      audit error: {error}")
    alike = sum(m["how"] == "behaviour" for m in doc["mutants"])
    if alike:
        lines += [
            "",
            f"Equivalent by behaviour: {alike} (every probe reply as the reference's; listed in "
            "the JSON: one that only an input the checks never send would reveal is a missing "
            "check too)",
        ]
    left = sum(m["how"] == "training" for m in doc["mutants"])
    if left and not doc["training"]:
        lines += [
            "",
            f"Left to the training checks: {left} (audit.yaml's `training:` list: architecture "
            "and optimiser choices only a training run judges; counted as equivalent here, "
            "graded with --training)",
        ]
    collateral = [m for m in doc["mutants"] if m["collateral"]]
    if collateral:
        lines += ["", f"Collateral ({len(collateral)}): a mistake in one part cost another's check"]
        for m in collateral:
            lines.append(f"  {m['description']} [{m['id']}] -> {'; '.join(m['collateral'])}")
    timed = [m for m in doc["mutants"] if m["how"] in ("timeout", "crashed")]
    if timed:
        lines += ["", f"Killed by timeout or crash ({len(timed)}):"]
        lines += [f"  {m['description']} [{m['id']}]: {m['how']}" for m in timed]
    if doc["reference_failures"]:
        lines += ["", "The reference itself lost points (fix the checks or the solution first):"]
        lines += [f"  seed {f['seed']}: {f['check']}" for f in doc["reference_failures"]]
    lines += ["", "Checks whose verdict depends on the seed:"]
    lines += [
        f"  {row['check']}  (shown by {', '.join(row['shown_by'][:3])}"
        + (f" and {len(row['shown_by']) - 3} more" if len(row["shown_by"]) > 3 else "")
        + ")"
        for row in doc["seed_dependent_checks"]
    ] or ["  none" if len(doc["seeds"]) > 1 else "  (one seed: not measured)"]
    if doc.get("run_to_run_checks"):
        lines += [
            "",
            "Verdicts that changed between two gradings of one seed (the program differs run to "
            "run, e.g. np.empty: not the check's inputs):",
        ]
        lines += [
            f"  {row['check']}  (shown by {', '.join(row['shown_by'][:3])})"
            for row in doc["run_to_run_checks"]
        ]
    lines += ["", "Smallest margins to a probe's timeout (in process; the sandbox adds transfers):"]
    lines += [
        f"  {row['margin']:>7.1f}x  {row['check']}  ({row['op']}: {row['seconds']:.2f} s of "
        f"{row['timeout']:g} s)"
        for row in doc["timeout_margins"][:MARGINS_SHOWN]
    ] or ["  none measured"]
    for entry in doc["equivalents_file_unused"]:
        lines.append(
            f"audit.yaml: the entry for {entry['part']} `{entry['original']}` {entry['why']}"
        )
    verdict = "ok" if doc["passed"] else "FAILED"
    lines += [
        "",
        f"killed {100 * doc['killed_fraction']:.1f}% of the non-equivalent mutants "
        f"(minimum {100 * doc['min_killed']:g}%): {verdict}",
    ]
    return "\n".join(lines)
