"""Grading the reference and every mutant: what runs where, on which seeds, for how long.

Three rounds on the pool of warm processes (``grader.audit.pool``):

1. the reference, on the audit's hidden seeds, every part whose checks the mutants need: its
   verdicts are the baseline (a mutant is killed when one of its part's checks scores below the
   reference's on the same seed), its time sets each mutant's limit;
2. every mutant on those seeds: its own part's checks on each seed, and on the first
   ``collateral_seeds`` (default 1) also the checks of the parts that use it (their failures are
   collateral findings; 0 spares that time, e.g. in CI, where only the kill rate is held);
3. the survivors (and the reference) on extra seeds: a survivor whose probe replies equal the
   reference's on all seeds is equivalent by behaviour.

The hidden seeds are a fixed sequence (:func:`audit_seeds`), not the course's secret: the same
audit gives the same table. ``training`` adds the training checks to the mutants the training
judges (``grader.mutation.mutants.trains``).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.assignment import Assignment
from grader.audit.equivalence import Listed, load_equivalents
from grader.audit.grading import lost_points
from grader.audit.pool import MEMORY_MB, AuditFault, Outcome, Pool, Task
from grader.checking import probe_timeout
from grader.mutation.mutants import (
    Mutant,
    Reference,
    checked_parts,
    generate,
    load_reference,
    trains,
)

#: The group of checks that train the model (the manifest's ``groups_after``).
TRAINING = "training"
#: A mutant's limit per seed: at least MIN_SECONDS, and at least ``pool.SLOWER`` times the
#: reference's time on the same parts and seed, measured by the same process just before.
MIN_SECONDS = 60.0
_ROOT_SEED = 20_240_917  # the audit's own: its hidden seeds are the same on every run


def audit_seeds(count: int, extra: int) -> tuple[list[int], list[int]]:
    """``count`` hidden seeds and ``extra`` more for survivors: the first of one fixed sequence,
    as large as a course's secret."""
    drawn = np.random.default_rng(_ROOT_SEED).integers(0, 2**62, size=count + extra)
    seeds = [int(s) for s in drawn]
    return seeds[:count], seeds[count:]


@dataclass
class Settings:
    seeds: int = 5
    extra_seeds: int = 3
    jobs: int = 2
    training: bool = False
    parts: list[str] | None = None  # None: every graded part
    collateral_seeds: int = 1  # seeds that also run the checks of the parts using the mutated one
    seconds_per_seed: float | None = None  # None: from the reference's time (SLOWER, MIN_SECONDS)
    memory_mb: int = MEMORY_MB
    progress: bool = True
    # Stop each mutant at its first killing check (and seed): the same verdicts and kill rate in
    # about half the time; ``killed_by`` then names that one check, and the seed dependence of
    # the checks is measured on the reference only.
    first_kill: bool = False
    # The share of the mutants graded, chosen by a hash of each one's id (stable across runs and
    # unrelated edits): CI holds a fixed sample to the threshold; authors audit them all.
    sample: float = 1.0


@dataclass
class AuditRun:
    """Everything graded: the reference's outcomes, and each mutant's, by mutant index."""

    reference: Reference
    mutants: list[Mutant]
    listed: tuple[Listed, ...]
    seeds: list[int]
    extra_seeds: list[int]
    reference_outcomes: list[Outcome]
    outcomes: dict[int, Outcome]  # by mutant index
    own_parts: dict[int, list[str]]
    seconds: float = 0.0
    training: bool = False
    notes: list[str] = field(default_factory=list)
    generated: int = 0  # mutants before sampling


def in_sample(mutant_id: str, share: float) -> bool:
    """Whether the mutant ``mutant_id`` is in the sample of ``share`` of all mutants."""
    if share >= 1.0:
        return True
    digest = hashlib.sha256(mutant_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


def _own_parts(reference: Reference, mutant: Mutant, training: bool) -> list[str]:
    train = training and TRAINING in reference.assignment.groups_after
    return [mutant.part] + ([TRAINING] if train and trains(reference, mutant.part) else [])


class Progress:
    """tqdm on stderr on a terminal (as ``grader grade`` shows a batch); otherwise a line per
    tenth of each round, for logs, each starting with ``command``."""

    def __init__(self, enabled: bool, command: str = "grader audit") -> None:
        self.command = command
        self.bar = None
        self.total = self.done = 0
        self.what = ""
        self.lines = enabled and not sys.stderr.isatty()
        if enabled and not self.lines:
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="grading", dynamic_ncols=True, file=sys.stderr)

    def add(self, n: int, what: str) -> None:
        self.total += n
        self.what = what
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.set_description(what)
            self.bar.refresh()

    def seed(self, task: Task, _: dict) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines and 10 * self.done // self.total > 10 * (self.done - 1) // self.total:
            print(f"{self.command}: {self.done}/{self.total} gradings ({self.what})",
                  file=sys.stderr, flush=True)  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_audit(assignment: Assignment | str, settings: Settings) -> AuditRun:
    """Grade the reference and the mutants of ``settings.parts``; classify nothing yet."""
    started = time.monotonic()
    reference = load_reference(assignment)
    generated = generate(reference, settings.parts)
    mutants = [m for m in generated if in_sample(m.id, settings.sample)]
    listed = load_equivalents(reference.assignment.folder, reference.assignment.part_names)
    seeds, extra = audit_seeds(settings.seeds, settings.extra_seeds)
    own = {i: _own_parts(reference, m, settings.training) for i, m in enumerate(mutants)}
    checked = {
        i: checked_parts(reference, m.part) if settings.collateral_seeds else []
        for i, m in enumerate(mutants)
    }
    order = reference.assignment.check_order
    needed = {p for i in own for p in (*own[i], *checked[i])} or set(settings.parts or ())
    baseline_parts = [p for p in order if p in needed]
    progress = Progress(settings.progress)
    pool = Pool(reference.assignment.folder, settings.jobs, settings.memory_mb)
    try:
        generous = 600.0 + (probe_timeout("train") if TRAINING in baseline_parts else 0.0)
        progress.add(len(seeds), "reference")
        (first,) = pool.run(
            [Task(0, None, [(s, baseline_parts) for s in seeds], generous)], progress.seed
        ).values()
        if first.ended != "done" or any("error" in r for r in first.seeds):
            faults = [r["error"] for r in first.seeds if "error" in r]
            raise AuditFault(f"the reference could not be graded: {first.note or faults[0]}")
        limit = settings.seconds_per_seed or MIN_SECONDS
        wide = settings.collateral_seeds
        tasks = [
            Task(i, m, [(s, [p for p in order if p in {*own[i], *checked[i]}]) for s in seeds[:wide]]
                 + [(s, own[i]) for s in seeds[wide:]], limit, generous, settings.first_kill)
            for i, m in enumerate(mutants)
        ]  # fmt: skip
        progress.add(sum(len(t.plan) for t in tasks), "mutants")
        outcomes = pool.run(tasks, progress.seed)
        survivors = [i for i in outcomes if _survived(outcomes[i], first, own[i])]
        reference_outcomes = [first]
        if extra and survivors:
            more = [Task(-1, None, [(s, baseline_parts) for s in extra], generous)]
            more += [
                Task(i, mutants[i], [(s, own[i]) for s in extra], limit, generous)
                for i in survivors
            ]
            progress.add(sum(len(t.plan) for t in more), "survivors, extra seeds")
            done = pool.run(more, progress.seed)
            reference_outcomes.append(done.pop(-1))
            for i, outcome in done.items():
                outcomes[i].seeds += outcome.seeds
                outcomes[i].ended, outcomes[i].note = outcome.ended, outcome.note
        # a verdict that differs between seeds: the same seeds once more, to tell a check that
        # depends on its inputs from a program that differs run to run (np.empty, unseeded draws)
        varying = [i for i, o in outcomes.items() if o.ended == "done" and seed_varying(o.seeds)]
        if varying:
            again = [Task(i, mutants[i], tasks[i].plan, limit, generous) for i in varying]
            progress.add(sum(len(t.plan) for t in again), "verdicts that differ by seed, again")
            for i, outcome in pool.run(again, progress.seed).items():
                outcomes[i].again = outcome.seeds if outcome.ended == "done" else []
    finally:
        pool.close()
        progress.close()
    return AuditRun(
        reference=reference,
        mutants=mutants,
        listed=listed,
        seeds=seeds,
        extra_seeds=extra if survivors else [],
        reference_outcomes=reference_outcomes,
        outcomes=outcomes,
        own_parts=own,
        seconds=time.monotonic() - started,
        training=settings.training,
        generated=len(generated),
    )


def check_verdicts(results: list[dict[str, Any]]) -> dict[str, dict[int, tuple[float, str]]]:
    """Each check's verdict (score, outcome kind) by seed, in gradings' results."""
    found: dict[str, dict[int, tuple[float, str]]] = defaultdict(dict)
    for result in results:
        for check in result.get("checks", []):
            found[check["name"]][result["seed"]] = (check["score"], check["kind"])
    return found


def seed_varying(results: list[dict[str, Any]]) -> list[str]:
    """The checks whose verdict differs between seeds."""
    return [name for name, by_seed in check_verdicts(results).items()
            if len(set(by_seed.values())) > 1]  # fmt: skip


def reference_scores(outcomes: list[Outcome]) -> dict[tuple[int, str], float]:
    """The reference's score of each check, by (seed, check name)."""
    return {
        (result["seed"], check["name"]): check["score"]
        for outcome in outcomes
        for result in outcome.seeds
        for check in result.get("checks", [])
    }


def _survived(outcome: Outcome, reference: Outcome, own: list[str]) -> bool:
    if outcome.ended != "done":
        return False
    baseline = reference_scores([reference])
    return not any(lost_points(r, own, baseline) for r in outcome.seeds)
