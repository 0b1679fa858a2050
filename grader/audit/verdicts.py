"""What the gradings say: each mutant killed, survived or equivalent; checks whose verdict depends
on the seed; each check's margin to its probe's timeout.

- **killed**: a check of the mutant's part scored below the reference's on some seed, or the
  grading did not finish (``timeout``: it ran past its limit; ``crashed``: the process died), as
  the sandbox would end such a learner's probe;
- **equivalent**: it survived, and every probe reply the checks received equals the reference's on
  every seed (``behaviour``), or the assignment's ``audit.yaml`` lists it with a reason (``listed``);
- **survived**: the checks saw different behaviour and did not object (a missing check); the first
  probe that differed says where.

A failing check of another part (one that uses the mutated part) is a *collateral* finding: one
mistake should cost only the property it breaks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from grader.audit.equivalence import Listed, listed_reason
from grader.audit.grading import lost_points
from grader.audit.run import AuditRun, check_verdicts, reference_scores
from grader.checking import probe_timeout
from grader.mutation.mutants import Mutant

KILLED, SURVIVED, EQUIVALENT = "killed", "survived", "equivalent"


@dataclass
class Verdict:
    mutant: Mutant
    status: str  # KILLED | SURVIVED | EQUIVALENT
    how: str  # checks | timeout | crashed | behaviour | listed | training (left to training)
    killed_by: list[str] = field(default_factory=list)  # own checks that lost points
    killed_on: list[int] = field(default_factory=list)  # the seeds on which they did
    collateral: list[str] = field(default_factory=list)  # other parts' checks that lost points
    difference: dict[str, Any] | None = None  # the first probe reply that differed (a survivor)
    reason: str = ""  # the equivalents file's, or what ended the grading
    errors: list[str] = field(default_factory=list)  # the audit's own faults, if any

    def as_json(self) -> dict[str, Any]:
        return {
            **self.mutant.summary(),
            "status": self.status,
            "how": self.how,
            "killed_by": self.killed_by,
            "killed_on_seeds": self.killed_on,
            "collateral": self.collateral,
            "difference": self.difference,
            "reason": self.reason,
            "errors": self.errors,
        }


def classify(run: AuditRun) -> list[Verdict]:
    baseline = reference_scores(run.reference_outcomes)
    verdicts = []
    for index, mutant in enumerate(run.mutants):
        outcome = run.outcomes[index]
        own = run.own_parts[index]
        killed_by: dict[str, None] = {}
        killed_on, collateral, errors = [], {}, []
        difference = None
        for result in outcome.seeds:
            if "error" in result:
                errors.append(f"seed {result['seed']}: {result['error']}")
                continue
            lost = lost_points(result, own, baseline)
            killed_by.update(dict.fromkeys(lost))
            if lost:
                killed_on.append(result["seed"])
            others = [p for p in result["parts"] if p not in own]
            collateral.update(dict.fromkeys(lost_points(result, others, baseline)))
            if difference is None and result.get("difference"):
                difference = {"seed": result["seed"], **result["difference"]}
        verdict = Verdict(mutant, KILLED, "checks", list(killed_by), killed_on, list(collateral))
        verdict.errors = errors
        entry = listed_reason(run.listed, mutant.part, mutant.operator, mutant.original,
                              mutant.mutated, run.training)  # fmt: skip
        if outcome.ended != "done":
            verdict.how, verdict.reason = outcome.ended, outcome.note
        elif not killed_by and difference is None and not errors:
            verdict.status, verdict.how = EQUIVALENT, "behaviour"
            verdict.reason = entry.reason if entry else ""
        elif not killed_by and entry is not None:
            how = "training" if entry.training else "listed"
            verdict.status, verdict.how, verdict.reason = EQUIVALENT, how, entry.reason
            verdict.difference = difference
        elif not killed_by:
            verdict.status, verdict.how, verdict.difference = SURVIVED, "", difference
        verdicts.append(verdict)
    return verdicts


def unused_entries(run: AuditRun, verdicts: list[Verdict]) -> list[dict[str, str]]:
    """Entries of the equivalents file (for the parts audited) that list no surviving mutant:
    stale, or killed now."""
    out = []
    audited = {m.part for m in run.mutants}
    for entry in (e for e in run.listed if e.part in audited and not (run.training and e.training)):
        matched = [
            v for v in verdicts
            if entry.matches(v.mutant.part, v.mutant.operator, v.mutant.original, v.mutant.mutated)
        ]  # fmt: skip
        if not matched and run.generated <= len(run.mutants):  # a sample may leave it out
            out.append(_entry(entry, "matches no mutant"))
        elif all(v.status == KILLED for v in matched):
            out.append(_entry(entry, "its mutant(s) are killed now"))
    return out


def _entry(entry: Listed, why: str) -> dict[str, str]:
    return {"part": entry.part, "original": entry.original, "why": why}


def summary(verdicts: list[Verdict], parts: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per part (and ``total``): mutants, killed, survived, equivalent, killed % of the rest."""
    rows: dict[str, dict[str, Any]] = {}
    for name in (*parts, "total"):
        mine = [v for v in verdicts if name in ("total", v.mutant.part)]
        if not mine:
            continue
        counts = {s: sum(v.status == s for v in mine) for s in (KILLED, SURVIVED, EQUIVALENT)}
        judged = counts[KILLED] + counts[SURVIVED]
        rows[name] = {
            "mutants": len(mine),
            **counts,
            "killed_fraction": counts[KILLED] / judged if judged else 1.0,
        }
    return rows


def seed_dependence(run: AuditRun, verdicts: list[Verdict]) -> dict[str, list[dict[str, Any]]]:
    """Checks whose verdict (score and outcome kind) differs between seeds, for the reference or
    for a killed mutant, with who showed it: ``by_seed`` when each seed, graded again, gave its
    verdict again (the check's inputs decide), ``run_to_run`` when one seed did not (the program
    itself differs from run to run: np.empty, an unseeded draw; no fault of the check)."""
    found: dict[str, dict[str, list[str]]] = {"by_seed": defaultdict(list),
                                              "run_to_run": defaultdict(list)}  # fmt: skip
    graded = [("reference", [r for o in run.reference_outcomes for r in o.seeds], [])]
    graded += [(v.mutant.id, run.outcomes[i].seeds, run.outcomes[i].again)
               for i, v in enumerate(verdicts) if v.status == KILLED]  # fmt: skip
    for who, results, again in graded:
        repeated = check_verdicts(again)
        for name, by_seed in check_verdicts(results).items():
            if len(set(by_seed.values())) < 2:
                continue
            second = repeated.get(name, {})
            changed = any(seed in second and second[seed] != v for seed, v in by_seed.items())
            found["run_to_run" if changed else "by_seed"][name].append(who)
    return {
        kind: [{"check": name, "shown_by": who} for name, who in sorted(rows.items())]
        for kind, rows in found.items()
    }


def timeout_margins(run: AuditRun) -> list[dict[str, Any]]:
    """Per check, its slowest probe in the reference's gradings against that probe's timeout
    (in process: the sandbox adds its own transfer time), smallest margin first."""
    slowest: dict[str, tuple[str, float]] = {}
    for outcome in run.reference_outcomes:
        for result in outcome.seeds:
            for check, (op, seconds) in result.get("slowest", {}).items():
                if check and seconds > slowest.get(check, ("", -1.0))[1]:
                    slowest[check] = (op, seconds)
    rows = [
        {
            "check": check,
            "op": op,
            "seconds": round(seconds, 3),
            "timeout": probe_timeout(op),
            "margin": round(probe_timeout(op) / max(seconds, 1e-6), 1),
        }
        for check, (op, seconds) in slowest.items()
    ]
    return sorted(rows, key=lambda row: row["margin"])


def reference_failures(run: AuditRun) -> list[dict[str, Any]]:
    """Checks the reference itself lost points on (the audit's baseline is then weaker)."""
    return [
        {"seed": result["seed"], "check": check["name"], "message": check["message"]}
        for outcome in run.reference_outcomes
        for result in outcome.seeds
        for check in result.get("checks", [])
        if check["score"] < check["max_score"]
    ]
