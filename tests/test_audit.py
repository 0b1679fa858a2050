"""The mutation audit (`grader audit`): its operators, its mutants' ids, the tiny course audited end
to end through the CLI (killed, equivalent by behaviour, listed in audit.yaml, timed out), its exit
status, the in-process channel that lets the train probe run in process, and the shipped course's
audit at the threshold CI holds it to.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np

from grader.assignment import load
from grader.audit import OPERATORS, killed_ids, load_reference, mutants_of
from grader.ingest import ingest_notebook
from grader.mutation.mutants import Reference, generate
from grader.mutation.operators import apply, edits
from tests.test_second_assignment import grader_cli

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tiny_course"

#: One function in which every operator finds something to change.
EVERYTHING = '''
def everything(values, rng=None, scale=2.0, flag=True):
    """A docstring is never mutated."""
    rng = np.random.default_rng(rng)
    total = 0
    out = np.array(values, dtype=np.float32)
    copied = values.copy()
    for i in range(len(values)):
        if values[i] < 3 and flag:
            total += values[i] * scale
        elif not values[i] >= 10:
            continue
        else:
            break
    pair = (total, out[1:])
    out = np.clip(out, 0.0, 1.0)
    picked = rng.integers(0, 10, size=2)
    result = max(total - 1, picked.sum()) / scale
    layer = dict(activation="softmax", name="head", padding="same")
    while total > 100:
        total = total // 2
    return {"a": result, "b": pair, "c": copied, "d": layer}
'''


def test_every_operator_makes_different_programs_that_compile():
    root = ast.parse(EVERYTHING).body[0]
    original = ast.unparse(root)
    programs = {}
    for edit in edits(root):
        text = ast.unparse(apply(root, edit))
        compile(text, "<mutant>", "exec")  # every mutant compiles
        if text != original:
            programs.setdefault(edit.operator, set()).add(text)
    assert set(programs) == set(OPERATORS), set(OPERATORS) - set(programs)
    assert ast.unparse(root) == original  # applying an edit leaves the original as it was
    assert not any("A docstring" not in p for ps in programs.values() for p in ps)


def _reference_with(
    source_change: tuple[str, str] | None = None, extra_cell: str = ""
) -> Reference:
    assignment = load(TINY)
    nb = nbformat.read(assignment.solution, as_version=4)
    if source_change:
        cell = next(c for c in nb.cells if "graded" in c.metadata.get("tags", ()))
        assert source_change[0] in cell.source
        cell.source = cell.source.replace(*source_change)
    if extra_cell:
        nb.cells.insert(1, nbformat.v4.new_code_cell(extra_cell))
    return Reference(assignment, nb, ingest_notebook(nb, assignment.ingest_rules()))


def test_mutant_ids_do_not_change_when_an_unrelated_line_is_added():
    before = {m.id: (m.original, m.mutated) for m in generate(_reference_with())}
    assert len(before) > 10
    moved = _reference_with(
        ("    width, height = size", "    unused = 3\n    width, height = size"),
        extra_cell="LIMIT = 7\nprint(LIMIT)",
    )
    after = {m.id: (m.original, m.mutated) for m in generate(moved)}
    assert set(before) < set(after)  # the new line brings mutants of its own
    assert all(after[i] == before[i] for i in before)


def test_a_mutant_is_the_solution_with_one_definition_changed():
    reference = load_reference(TINY)
    mutants = mutants_of(TINY, "normalise_box")
    assert len({m.id for m in mutants}) == len(mutants)
    swapped = next(m for m in mutants if m.mutated == "height, width = size")
    assert swapped.description == "two elements of a tuple or list swapped in normalise_box"
    assert "height, width" not in swapped.description  # descriptions quote no code
    ingested = reference.ingest(swapped)  # re-ingested as grading would
    for source in (ingested.source, swapped.source):
        namespace: dict = {}
        exec(compile(source, "mutant", "exec"), namespace)
        got = namespace["normalise_box"](np.array([10.0, 20.0, 30.0, 40.0]), (200, 100))
        assert np.allclose(got, [0.1, 0.1, 0.3, 0.2])  # x over the height: the mistake
    cells = reference.notebook_with(swapped).cells
    assert [c.source for c in cells if "graded" not in c.metadata.get("tags", ())] == [
        c.source for c in reference.notebook.cells if "graded" not in c.metadata.get("tags", ())
    ]


#: A weak check: it looks at the shape of what comes back, not at the numbers.
WEAK_CHECK = '''
import numpy as np

from grader.checking import Incorrect, check


@check("normalise_box", 2, public=True)
def test_normalise_box_returns_four_numbers(submission):
    """four numbers come back for one box"""
    got = submission.call("normalise_box", [10, 20, 30, 40], (200, 100))
    if np.shape(got) != (4,):
        raise Incorrect("one box in, one box out", expected=(4,), got=np.shape(got))
'''


def _course_copy(
    tmp_path: Path, *, weak: bool = False, graded: tuple[str, str] | None = None,
    equivalents: str = "",
) -> Path:  # fmt: skip
    """The tiny course copied: with only a weak check, with its solution changed, with an
    audit.yaml."""
    folder = tmp_path / "tiny_copy"
    shutil.copytree(TINY, folder)
    if weak:
        (folder / "checks" / "hidden" / "test_hidden.py").unlink()
        (folder / "checks" / "public" / "test_public.py").write_text(WEAK_CHECK)
    if graded:
        nb = nbformat.read(folder / "solution.ipynb", as_version=4)
        cell = next(c for c in nb.cells if "graded" in c.metadata.get("tags", ()))
        assert graded[0] in cell.source
        cell.source = cell.source.replace(*graded)
        nbformat.write(nb, folder / "solution.ipynb")
    if equivalents:
        (folder / "audit.yaml").write_text(equivalents)
    return folder


def _audit(folder: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "audit.json"
    run = grader_cli("audit", "--assignment", str(folder), "--json", str(out), *args)
    return run, (json.loads(out.read_text()) if out.exists() else {})


def test_the_tiny_course_audit_kills_every_mistake_its_checks_can_see(tmp_path):
    run, doc = _audit(TINY, tmp_path, "--seeds", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "normalise_box" in run.stdout and "total" in run.stdout
    assert "killed 100.0% of the non-equivalent mutants (minimum 95%): ok" in run.stdout
    row = doc["parts"]["normalise_box"]
    assert row["mutants"] == len(doc["mutants"]) == row["killed"] + row["equivalent"] > 10
    by_line = {m["mutated"]: m for m in doc["mutants"]}
    swapped = by_line["height, width = size"]  # square public image: only the hidden check sees it
    assert swapped["status"] == "killed" and swapped["killed_by"] == [
        "normalise_box: many boxes in a wide image: x by the width, y by the height, clipped to [0, 1]"
    ]
    assert swapped["killed_on_seeds"] == doc["seeds"]
    # np.asarray(box) / scale is a float array all the same: the same replies on every seed
    dropped = by_line["return np.clip(np.asarray(box) / scale, 0.0, 1.0)"]
    assert (dropped["status"], dropped["how"]) == ("equivalent", "behaviour")
    assert all(m["original"] and m["description"] for m in doc["mutants"])
    assert killed_ids(tmp_path / "audit.json") == {
        m["id"] for m in doc["mutants"] if m["status"] == "killed"
    }


def test_first_kill_and_a_sample_give_the_same_verdicts_on_fewer_gradings(tmp_path):
    _, full = _audit(TINY, tmp_path, "--seeds", "2")
    run, fast = _audit(TINY, tmp_path, "--seeds", "2", "--first-kill", "--sample", "0.5")
    assert run.returncode == 0, run.stdout + run.stderr
    verdicts = {m["id"]: m["status"] for m in full["mutants"]}
    sampled = {m["id"]: m["status"] for m in fast["mutants"]}
    assert 0 < len(sampled) < len(verdicts) == fast["mutants_generated"]
    assert sampled == {i: verdicts[i] for i in sampled}
    assert f"(a fixed sample of the {len(verdicts)})" in run.stdout
    killed = [m for m in fast["mutants"] if m["status"] == "killed"]
    assert killed and all(len(m["killed_by"]) == 1 for m in killed)
    # a mutant killed on the first seed is not graded on the second
    assert all(len(m["killed_on_seeds"]) == 1 for m in killed)
    assert any(len(m["killed_by"]) > 1 for m in full["mutants"])
    _, again = _audit(TINY, tmp_path, "--seeds", "1", "--extra-seeds", "0", "--sample", "0.5")
    assert {m["id"] for m in again["mutants"]} == set(sampled)  # the same sample every run


def test_with_a_weak_check_survivors_are_listed_and_the_exit_status_says_so(tmp_path):
    folder = _course_copy(tmp_path, weak=True)
    run, doc = _audit(folder, tmp_path, "--seeds", "1", "--extra-seeds", "1")
    assert run.returncode == 1, run.stdout + run.stderr
    survivors = [m for m in doc["mutants"] if m["status"] == "survived"]
    assert "height, width = size" in {m["mutated"] for m in survivors}
    assert all(m["difference"]["probe"] == "call normalise_box" for m in survivors)
    assert "Survivors" in run.stdout and "-> height, width = size" in run.stdout
    killed = doc["parts"]["total"]["killed_fraction"]
    assert 0 < killed < 0.95
    run, doc = _audit(folder, tmp_path, "--seeds", "1", "--extra-seeds", "0", "--min-killed",
                      f"{killed - 0.01:.3f}")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_equivalents_file_is_honoured(tmp_path):
    listed = """
equivalent:
  - part: normalise_box
    original: "width, height = size"
    mutated: "height, width = size"
    reason: "pretend the task allows either order"
  - part: normalise_box
    original: "a line the solution does not have"
    operator: swap
    reason: "stale"
"""
    folder = _course_copy(tmp_path, weak=True, equivalents=listed)
    run, doc = _audit(folder, tmp_path, "--seeds", "1", "--extra-seeds", "0", "--min-killed", "0")
    assert run.returncode == 0, run.stdout + run.stderr
    swapped = next(m for m in doc["mutants"] if m["mutated"] == "height, width = size")
    assert (swapped["status"], swapped["how"]) == ("equivalent", "listed")
    assert swapped["reason"] == "pretend the task allows either order"
    assert doc["equivalents_file_unused"] == [
        {"part": "normalise_box", "original": "a line the solution does not have",
         "why": "matches no mutant"}
    ]  # fmt: skip
    assert "a line the solution does not have` matches no mutant" in run.stdout
    (folder / "audit.yaml").write_text("equivalent:\n  - part: normalise_box\n    original: x\n")
    run, _ = _audit(folder, tmp_path)
    assert run.returncode == 2 and "needs a reason" in run.stderr


def test_a_training_entry_leaves_every_mutant_of_its_line_to_the_training_checks(tmp_path):
    listed = """
training:
  - part: normalise_box
    original: "width, height = size"
    reason: "pretend only a training run can judge this line"
"""
    folder = _course_copy(tmp_path, weak=True, equivalents=listed)
    run, doc = _audit(folder, tmp_path, "--seeds", "1", "--extra-seeds", "0", "--min-killed", "0")
    assert run.returncode == 0, run.stdout + run.stderr
    of_line = [m for m in doc["mutants"] if m["original"] == "width, height = size"]
    left = [m for m in of_line if m["how"] == "training"]
    assert left and all(m["status"] == "equivalent" for m in left)
    assert {m["operator"] for m in left} >= {"swap"}  # no operator given: every one of the line
    assert f"Left to the training checks: {len(left)}" in run.stdout
    assert not any(m["how"] == "training" for m in doc["mutants"] if m not in of_line)


def test_a_mutant_that_hangs_is_killed_by_timeout_and_the_audit_goes_on(tmp_path):
    loop = "    while True:\n        scale = np.array([width, height, width, height], dtype=float)\n        break"
    folder = _course_copy(
        tmp_path, graded=("    scale = np.array([width, height, width, height], dtype=float)", loop)
    )
    started = time.monotonic()
    run, doc = _audit(folder, tmp_path, "--seeds", "2", "--timeout", "4", "-j", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    hung = [m for m in doc["mutants"] if m["how"] == "timeout"]
    assert {m["mutated"] for m in hung} == {"pass", "continue"}  # the `break` removed or turned
    # the limit is --timeout, or more on a busy machine (SLOWER times the reference's time there)
    limits = [re.search(r"no result within (\d+) s", m["reason"]) for m in hung]
    assert all(m["status"] == "killed" for m in hung) and all(limits), [m["reason"] for m in hung]
    assert all(int(found.group(1)) >= 4 for found in limits)
    assert "Killed by timeout or crash (2)" in run.stdout
    others = [m for m in doc["mutants"] if m["how"] != "timeout"]
    assert others and all(m["status"] in ("killed", "equivalent") for m in others)
    assert time.monotonic() - started < 120


def _graded(seed: int, **scores: float) -> dict:
    kinds = {1.0: "passed", 0.0: "incorrect"}
    return {"seed": seed, "checks": [{"name": n, "score": v, "kind": kinds[v]}
                                     for n, v in scores.items()]}  # fmt: skip


def test_a_verdict_that_changes_on_one_seed_graded_twice_is_the_programs_not_the_checks():
    """A killed mutant whose verdict differs between seeds is graded on the same seeds again:
    a check whose verdicts repeat seed by seed depends on its inputs (to fix); one whose verdict
    changed on a seed shows a program that differs run to run (np.empty), not the check."""
    from types import SimpleNamespace

    from grader.audit.pool import Outcome
    from grader.audit.run import seed_varying
    from grader.audit.verdicts import KILLED, seed_dependence

    first = [_graded(1, inputs=0.0, memory=1.0, steady=0.0),
             _graded(2, inputs=1.0, memory=0.0, steady=0.0)]  # fmt: skip
    again = [_graded(1, inputs=0.0, memory=0.0, steady=0.0),
             _graded(2, inputs=1.0, memory=0.0, steady=0.0)]  # fmt: skip
    assert sorted(seed_varying(first)) == ["inputs", "memory"]
    run = SimpleNamespace(
        reference_outcomes=[Outcome(seeds=[_graded(1, inputs=1.0), _graded(2, inputs=1.0)])],
        outcomes={0: Outcome(seeds=first, again=again), 1: Outcome(seeds=first)},
    )
    verdicts = [SimpleNamespace(mutant=SimpleNamespace(id=f"m{i}"), status=KILLED) for i in (0, 1)]
    found = seed_dependence(run, verdicts)
    assert found["by_seed"] == [
        {"check": "inputs", "shown_by": ["m0", "m1"]},
        {"check": "memory", "shown_by": ["m1"]},  # not graded again: nothing tells them apart
    ]
    assert found["run_to_run"] == [{"check": "memory", "shown_by": ["m0"]}]


def test_bench_prints_each_checks_scores_and_measures_over_the_seeds(tmp_path):
    out = tmp_path / "bench.json"
    run = grader_cli("bench", "--assignment", str(TINY), "--seeds", "3", "--json", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(out.read_text())
    assert len(doc["seeds"]) == 3 and not doc["faults"]
    hidden = next(row for row in doc["checks"] if row["check"].startswith("normalise_box: many"))
    assert hidden["scores"] == [3.0, 3.0, 3.0]
    assert hidden["figures"]["share of boxes right"]["values"] == [1.0, 1.0, 1.0]
    assert "share of boxes right: min 1, median 1, max 1 (over 3 of 3 seeds)" in run.stdout
    # a reference that loses points on some seed: exit 1, the check marked
    folder = _course_copy(tmp_path, graded=("0.0, 1.0)", "0.0, 0.5)"))
    run = grader_cli("bench", "--assignment", str(folder), "--seeds", "2")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "LOST" in run.stdout and "share of boxes right: min 0." in run.stdout
    run = grader_cli("bench", "--assignment", str(TINY), "--parts", "nothing")
    assert run.returncode == 2 and "no part nothing" in run.stderr


def test_bad_usage_exits_2_and_lists_the_assignments():
    run = grader_cli("audit", "--assignment", "no_such_course")
    assert run.returncode == 2
    assert "no assignment 'no_such_course'" in run.stderr and "object_localization" in run.stderr
    run = grader_cli("audit", "--assignment", str(TINY), "--parts", "not_a_part")
    assert run.returncode == 2 and "no graded part not_a_part" in run.stderr


def test_the_train_probe_runs_in_process_through_the_channel():
    """InProcessSubmission answers the train probe's questions for batches via on_message."""
    from grader.checking import InProcessSubmission
    from tests.objloc import COURSE, SOLUTION_NOTEBOOK, ingest

    ingested = ingest(SOLUTION_NOTEBOOK)
    namespace = {"__name__": "submission"}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    submission = InProcessSubmission(namespace, ingested, COURSE)
    asked = []

    def batch(index):
        asked.append(index)
        rng = np.random.default_rng(index)
        images = rng.integers(0, 256, (4, 144, 144, 3), dtype=np.uint8)
        classes = np.eye(9, dtype=np.float32)[rng.integers(0, 9, 4)]
        return images, {"class_out": classes, "box_out": rng.uniform(0, 0.5, (4, 2))}

    test_images = np.zeros((3, 144, 144, 3), np.uint8)
    report = submission.train(batch, test_images, epochs=2, steps_per_epoch=2, seed=0)
    assert report["steps"] == 4 and report["epochs"] == 2
    assert asked[:4] == [0, 1, 2, 3]
    assert np.asarray(report["predictions"]["box_out"]).shape == (3, 2)


#: CI's settings for the shipped course's audit: one hidden seed, one more for the survivors, no
#: collateral gradings (CI holds the kill rate; the full audit reports the rest), two processes.
#: Measured on the 2-core machine beside other jobs (load 5-7): all 452 mutants with --first-kill
#: in 11.5 min of wall clock (27 min without it, before the callback's fit ran eagerly); half of
#: them took 14.6 min inside a CI run beside a second one. CI grades a fixed quarter (--sample
#: 0.25, the same mutants on every run: a few minutes); the whole audit is for releases (AUTHORING).
CI_SEEDS = (
    "--seeds", "1", "--extra-seeds", "1", "--collateral-seeds", "0", "-j", "2", "--first-kill",
    "--sample", "0.25",
)  # fmt: skip


def test_the_shipped_courses_checks_kill_95_percent_of_the_mutants(tmp_path):
    """CI holds the shipped course to the issue's threshold on the non-training parts."""
    out = tmp_path / "audit.json"
    run = subprocess.run(
        [sys.executable, "-m", "grader", "audit", "--assignment", "object_localization",
         "--min-killed", "0.95", "--json", str(out), *CI_SEEDS],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    print(run.stdout[-6000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
