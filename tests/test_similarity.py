"""``grader similarity`` on a made-up cohort of 30 notebooks (tests/similarity_cohort.py): the
solution, the untouched stub, typical mistakes (two of them made by two learners each), three
independent implementations of every graded part and three disguised copies of those. The copies
must rank first and pass the threshold; no pair of independent notebooks may pass it. Also: each
disguise on its own, the given code as boilerplate, outside sources, LMS zips and bad input.

Behaviour (the models' fingerprints that grading stores): null without stored gradings; from
stored gradings, the copies' models agree (1) and rank first, a copy with other code but the same
model ranks first too, a model many share counts little, and a grading of another version of the
notebook is not used. The fingerprints in these records are synthetic, shaped as the course's
grading records them and as measured on this cohort (see ``synthetic_models``); that grading
writes them is tested on the real grading in tests/test_grade.py."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import re
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader.cli import main
from grader.results import Fingerprint, GradingResult, results_json
from grader.similarity import BEHAVIOUR_THRESHOLD, CODE_THRESHOLD, SOURCE_PREFIX, compare_cohort
from grader.similarity.behaviour import weighed
from grader.similarity.extract import GradedCode, given_code, graded_cells, quick_rules
from tests import similarity_cohort as cohort
from tests.objloc import COURSE

RULES = quick_rules(COURSE)
GIVEN = given_code(COURSE)


@pytest.fixture(scope="module")
def cohort_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict], int]:
    root = tmp_path_factory.mktemp("similarity")
    folder = cohort.write(cohort.cohort(), root / "submissions")
    code = main(
        ["similarity", str(folder), "--out", str(root / "out"), "--json", str(root / "pairs.json")]
    )
    return root, json.loads((root / "pairs.json").read_text()), code


def _code(name: str, nb: nbformat.NotebookNode) -> GradedCode:
    return GradedCode(name, name, graded_cells(nbformat.writes(nb).encode(), RULES))


def test_the_cohort_has_thirty_notebooks_and_every_one_has_graded_code(cohort_run):
    _, rows, code = cohort_run
    assert code == 0
    names = {row[key] for row in rows for key in ("a", "b")}
    assert len(names) == 30 and len(rows) == 30 * 29 // 2


def test_the_three_disguised_copies_rank_first_and_pass_the_threshold(cohort_run):
    _, rows, _ = cohort_run
    top = [frozenset((row["a"], row["b"])) for row in rows[:3]]
    assert set(top) == {frozenset(pair) for pair in cohort.COPIES}
    assert all(row["score"] >= CODE_THRESHOLD for row in rows[:3]), rows[:3]


def test_no_independent_pair_passes_the_threshold(cohort_run):
    _, rows, _ = cohort_run
    copies = {frozenset(pair) for pair in cohort.COPIES}
    independent = [row for row in rows if frozenset((row["a"], row["b"])) not in copies]
    assert len(independent) == len(rows) - 3
    assert max(row["score"] for row in independent) < CODE_THRESHOLD
    # the same typical mistake made by two learners shares all their own code, and is no copy
    again = [r for r in independent if r["a"].startswith("again_") or r["b"].startswith("again_")]
    assert again and all(row["score"] < CODE_THRESHOLD for row in again)


def test_the_json_is_sorted_by_score_and_has_the_documented_fields(cohort_run):
    _, rows, _ = cohort_run
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)
    for row in rows:
        assert set(row) == {"a", "b", "code", "behaviour", "score"}
        assert 0.0 <= row["code"] <= 1.0 and row["behaviour"] is None  # no stored gradings
        assert row["score"] == row["code"]


def test_the_page_says_it_is_no_verdict_and_shows_the_copied_code_side_by_side(cohort_run):
    root, _, _ = cohort_run
    page = (root / "out" / "similarity.html").read_text()
    assert "not a verdict" in page and str(CODE_THRESHOLD) in page
    assert page.count("<mark>") > 20  # the matching code is marked, in both columns
    assert "alternative_1" in page and "copy_of_1" in page
    assert "<script" not in page and "http" not in page.split("</style>")[0]
    assert "Behaviour is not measured here" in page and "--results DIR" in page


@pytest.mark.parametrize("disguise", ["renamed", "reordered", "recommented"])
def test_each_disguise_alone_does_not_hide_a_copy(disguise):
    original = cohort.alternative(1)
    copy = cohort.alternative(1)
    cells = cohort.graded_cells(copy)
    parts = list(cells)
    if disguise == "reordered":  # the cells' code in another order, the classes' methods too
        sources = [cells[p].source for p in parts]
        for slot, text in zip(parts, sources[::-1], strict=True):
            cells[slot].source = text
    elif disguise == "renamed":  # every local, helper and attribute of its own: text kept
        for part in parts:
            names = cohort.local_names(ast.parse(cells[part].source), part)
            pattern = re.compile(r"\b(" + "|".join(names) + r")\b")
            cells[part].source = pattern.sub(lambda m: f"z{m[1].upper()}q", cells[part].source)
    else:  # comments dropped and added, blank lines added: names and order kept
        for part in parts:
            lines = []
            for number, line in enumerate(cells[part].source.splitlines()):
                if line.lstrip().startswith("#") and number:
                    continue
                lines.append(line + ("  # I wrote this" if number % 3 == 1 else ""))
                lines += [""] if number % 4 == 2 else []
            cells[part].source = "\n".join(lines)
    found = compare_cohort([_code("a", original), _code("b", copy)], given=GIVEN)
    assert found.pairs[0].score >= CODE_THRESHOLD, found.pairs[0]


def test_the_given_code_and_the_reference_are_boilerplate():
    solution = _code("solution", cohort.solution())
    stub = _code("stub", cohort.learner_stub())
    mistake = _code("mistake", cohort.with_mistakes("IoU-unclamped"))
    alone = compare_cohort([solution, stub, mistake], given=GIVEN)
    assert all(pair.score == 0.0 for pair in alone.pairs if "mistake" not in (pair.a, pair.b))
    assert all(pair.score < CODE_THRESHOLD for pair in alone.pairs)
    # without the boilerplate, the solution and a one-line mistake of it would look copied
    unaware = compare_cohort([solution, mistake])
    assert unaware.pairs[0].score > 0.9


def test_against_compares_submissions_with_outside_sources_only(tmp_path):
    submissions = cohort.write(
        {"learner_a": cohort.alternative(0), "learner_b": cohort.with_mistakes("IoU-unclamped")},
        tmp_path / "submissions",
    )
    public = cohort.write(
        {
            "public_1": cohort.disguised_copy(cohort.alternative(0), 3),
            "public_2": cohort.disguised_copy(cohort.alternative(0), 4),
        },
        tmp_path / "public",
    )
    out = tmp_path / "out"
    code = main(
        [
            "similarity",
            str(submissions),
            "--against",
            str(public),
            "--out",
            str(out),
            "--json",
            str(tmp_path / "pairs.json"),
            "-j",
            "1",
        ]
    )
    rows = json.loads((tmp_path / "pairs.json").read_text())
    assert code == 0
    pairs = {(row["a"], row["b"]): row["score"] for row in rows}
    assert (f"{SOURCE_PREFIX}public_1", f"{SOURCE_PREFIX}public_2") not in pairs
    assert len(pairs) == 1 + 2 * 2  # a-b, and each submission against each source
    assert pairs[("learner_a", f"{SOURCE_PREFIX}public_1")] >= CODE_THRESHOLD
    assert pairs[("learner_b", f"{SOURCE_PREFIX}public_1")] < CODE_THRESHOLD


def test_lms_zips_are_read_and_unreadable_files_are_listed_not_compared(tmp_path, capsys):
    archive = tmp_path / "moodle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for learner, nb in (
            ("Jane Doe_101", cohort.alternative(2)),
            ("John Roe_102", cohort.disguised_copy(cohort.alternative(2), 5)),
        ):
            zf.writestr(f"{learner}_assignsubmission_file_/nb.ipynb", nbformat.writes(nb))
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    out = tmp_path / "out"
    code = main(["similarity", str(archive), str(broken), "--out", str(out), "-j", "1"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "1 not compared" in printed.out
    page = (out / "similarity.html").read_text()
    assert "Jane_Doe_101" in page and "John_Roe_102" in page and "broken" in page


def test_bad_input_is_refused_with_a_clear_message(tmp_path, capsys):
    one = cohort.write({"only": cohort.alternative(0)}, tmp_path / "one")
    cases = [
        ([str(tmp_path / "missing")], "no submissions found"),
        ([str(one)], "nothing to compare"),
        ([str(one), "--against", str(tmp_path / "nowhere")], "--against"),
        ([str(one), "-j", "0"], "-j must be at least 1"),
    ]
    for extra, said in cases:
        code = main(["similarity", *extra, "--out", str(tmp_path / "out")])
        assert code == 2 and said in capsys.readouterr().err, extra
    assert not (tmp_path / "out").exists()


def test_grade_s_class_summary_embeds_the_section_and_keeps_it_when_rebuilt(tmp_path):
    from grader import batch
    from grader.similarity.command import write_for_batch

    folder = cohort.write(
        {
            "learner_a": cohort.alternative(0),
            "learner_b": cohort.disguised_copy(cohort.alternative(0), 2),
            "learner_c": cohort.with_mistakes("lr_schedule-no-floor"),
        },
        tmp_path / "submissions",
    )
    items, _ = batch.discover([folder])
    out = tmp_path / "reports"
    line = write_for_batch(items, out, COURSE)
    assert "1 pair(s) at or above" in line
    for _ in range(2):  # as written, then as any later run rebuilds it from the journal
        index = (out / batch.INDEX).read_text()
        assert "Similar submissions" in index and "not a verdict" in index
        assert 'href="similarity.html"' in index and "learner_b" in index
        assert "<mark>" not in index  # the code side by side is on the similarity page only
        batch.rebuild(out)
    rows = json.loads((out / "similarity.json").read_text())
    assert (rows[0]["a"], rows[0]["b"]) == ("learner_a", "learner_b")
    assert "<mark>" in (out / "similarity.html").read_text()


# -- behaviour, from stored gradings -------------------------------------------------------------


def model(which: int, images: int = 16) -> Fingerprint:
    """A synthetic fingerprint: layers and predictions (class probabilities and a box per image)
    drawn from ``which``. Two of them with another ``which`` agree on no image, as two models of
    different designs did when measured (the closest differed by 0.075 on their closest image)."""
    rng = np.random.default_rng(which)
    layers = [f"Conv2D (None, {n}, {n}, {f}) {p}" for n, f, p in rng.integers(1, 99, (6, 3))]
    probs = rng.dirichlet(np.ones(9), images)
    boxes = rng.uniform(0.1, 0.6, (images, 2))
    rows = [[round(float(x), 4) for x in (*p, *b)] for p, b in zip(probs, boxes, strict=True)]
    return Fingerprint(("InputLayer (None, 144, 144, 3) 0", *layers), rows, 0.0015, "5ea2754a")


def synthetic_models(notebooks: dict[str, nbformat.NotebookNode]) -> dict[str, Fingerprint]:
    """What grading would record for each notebook of the cohort, as measured on it (every model
    built as grading builds it, under two course secrets): the same model for notebooks whose
    create_model cell is the same (the solution's, by 19 of them: ``expected``), the copy's
    model for a disguised copy, none where create_model is the stub."""
    stub = cohort.graded_cells(cohort.learner_stub())["create_model"].source
    solution = cohort.graded_cells(cohort.solution())["create_model"].source
    kinds: dict[str, int] = {}
    found = {}
    for name, nb in notebooks.items():
        code = cohort.graded_cells(nb)["create_model"].source
        if code == stub:
            continue
        original = dict((copy, first) for first, copy in cohort.COPIES).get(name)
        if original:
            code = cohort.graded_cells(notebooks[original])["create_model"].source
        made = model(kinds.setdefault(code, len(kinds)))
        found[name] = dataclasses.replace(made, expected=code == solution)
    return found


def store_gradings(
    folder: Path, out: Path, models: dict[str, Fingerprint], *, stale: tuple[str, ...] = ()
) -> None:
    """results.json of each notebook in ``folder`` into ``out/<id>/``, as ``grader grade`` files
    them, with its fingerprint (``stale``: a grading of other bytes)."""
    for path in sorted(folder.glob("*.ipynb")):
        digest = hashlib.sha256(path.read_bytes() + (b"v1" if path.stem in stale else b""))
        record = GradingResult(
            path.stem, submission_sha256=digest.hexdigest(), fingerprint=models.get(path.stem)
        )
        (out / path.stem).mkdir(parents=True, exist_ok=True)
        (out / path.stem / "results.json").write_bytes(results_json(record))


@pytest.fixture(scope="module")
def graded_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("graded")
    notebooks = cohort.cohort()
    folder = cohort.write(notebooks, root / "submissions")
    store_gradings(folder, root / "graded", synthetic_models(notebooks))
    code = main(
        [
            "similarity",
            str(folder),
            "--results",
            str(root / "graded"),
            "--out",
            str(root / "out"),
            "--json",
            str(root / "pairs.json"),
        ]
    )
    assert code == 0
    return root, json.loads((root / "pairs.json").read_text())


def test_with_stored_gradings_the_copies_models_agree_and_rank_first(graded_cohort):
    _, rows = graded_cohort
    top = rows[:3]
    assert {frozenset((row["a"], row["b"])) for row in top} == set(map(frozenset, cohort.COPIES))
    assert all(row["behaviour"] == 1.0 and row["score"] == 1.0 for row in top), top


def test_with_stored_gradings_no_independent_pair_passes_either_threshold(graded_cohort):
    _, rows = graded_cohort
    copies = set(map(frozenset, cohort.COPIES))
    independent = [row for row in rows if frozenset((row["a"], row["b"])) not in copies]
    assert max(row["code"] for row in independent) < CODE_THRESHOLD
    measured = [row["behaviour"] for row in independent if row["behaviour"] is not None]
    assert len(measured) == 28 * 27 // 2 - 3  # the untouched stub and partly_done_1 build none
    assert max(measured) < BEHAVIOUR_THRESHOLD
    # the solution's model, built by 19 notebooks here, is the expected answer: it counts 0
    # (measured: 20, with the sparse-loss mistake, whose compile no fingerprint sees)
    pair = next(r for r in rows if {r["a"], r["b"]} == {"solution", "mistake_IoU-unclamped"})
    assert pair["behaviour"] == 0.0
    for row in rows:
        assert row["score"] == max(row["code"], row["behaviour"] or 0.0)
        built = {"untouched", "partly_done_1"}.isdisjoint((row["a"], row["b"]))
        assert (row["behaviour"] is not None) == built, row


def test_the_page_shows_the_behaviour_and_what_could_not_be_compared(graded_cohort):
    root, _ = graded_cohort
    page = (root / "out" / "similarity.html").read_text()
    assert "Behaviour is not measured here" not in page
    assert "the same predictions on 16 of 16 hidden images" in page
    # the same mistake made twice is listed (by its code); its model, the solution's, counts 0
    assert "both are the solution's model, the expected answer, so it counts 0" in page
    assert "No model to compare" in page and "recorded no fingerprint" in page


def test_a_copy_with_other_code_but_the_same_model_ranks_first(tmp_path):
    folder = cohort.write(
        {
            "learner_a": cohort.alternative(0),
            "learner_b": cohort.alternative(1),  # other code everywhere...
            "learner_c": cohort.alternative(2),
        },
        tmp_path / "submissions",
    )
    models = {"learner_a": model(1), "learner_b": model(1), "learner_c": model(2)}  # ...same model
    store_gradings(folder, tmp_path / "graded", models)
    argv = ["similarity", str(folder), "--results", str(tmp_path / "graded")]
    code = main([*argv, "--out", str(tmp_path / "out"), "--json", str(tmp_path / "pairs.json")])
    rows = json.loads((tmp_path / "pairs.json").read_text())
    assert code == 0
    first = rows[0]
    assert (first["a"], first["b"]) == ("learner_a", "learner_b")
    assert first["code"] < CODE_THRESHOLD and first["behaviour"] == first["score"] == 1.0
    assert all(row["behaviour"] == 0.0 for row in rows[1:])


def test_a_grading_of_another_version_of_the_notebook_is_not_used(tmp_path):
    folder = cohort.write(
        {"learner_a": cohort.alternative(0), "learner_b": cohort.alternative(1)},
        tmp_path / "submissions",
    )
    same = {"learner_a": model(1), "learner_b": model(1)}
    store_gradings(folder, tmp_path / "graded", same, stale=("learner_b",))
    argv = ["similarity", str(folder), "--results", str(tmp_path / "graded")]
    assert main([*argv, "--out", str(tmp_path / "out"), "--json", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())[0]["behaviour"] is None
    page = (tmp_path / "out" / "similarity.html").read_text()
    assert "learner_b: its stored grading is of another version of the notebook" in page


def test_a_model_shared_by_many_counts_less_and_a_ring_of_three_still_passes():
    ring = {f"copier_{i}": model(7) for i in range(3)}
    crowd = {f"learner_{i}": model(8) for i in range(10)}
    alone = {"other": model(9)}
    found = weighed({**ring, **crowd, **alone})
    assert found["copier_0", "copier_1"].value == round(2 / 3, 4) >= BEHAVIOUR_THRESHOLD
    assert found["learner_0", "learner_1"].value == 0.2 < BEHAVIOUR_THRESHOLD
    assert found["learner_0", "learner_1"].agreement == 1.0
    assert found["copier_0", "other"].value == 0.0
    # the solution's model: the expected answer, 0 however few share it
    solved = dataclasses.replace(model(7), expected=True)
    pair = weighed({"a": solved, "b": solved})["a", "b"]
    assert (pair.agreement, pair.value, pair.expected) == (1.0, 0.0, True)
    # the same layers, predictions that differ on half the images: half the agreement
    half = model(7)
    rows = [*half.predictions[:8], *model(9).predictions[8:]]
    changed = Fingerprint(half.architecture, rows, half.tolerance, half.images)
    assert weighed({"a": half, "b": changed})["a", "b"].value == 0.5


def test_grade_s_class_summary_compares_the_models_grading_just_stored(tmp_path):
    from grader import batch
    from grader.similarity.command import write_for_batch

    folder = cohort.write(
        {"learner_a": cohort.alternative(0), "learner_b": cohort.alternative(1)},
        tmp_path / "submissions",
    )
    out = tmp_path / "reports"
    store_gradings(folder, out, {"learner_a": model(3), "learner_b": model(3)})
    items, _ = batch.discover([folder])
    line = write_for_batch(items, out, COURSE)
    assert "1 pair(s) at or above a threshold (2 model fingerprint(s))" in line
    rows = json.loads((out / "similarity.json").read_text())
    assert rows[0]["behaviour"] == 1.0
    assert "Similar submissions" in (out / batch.INDEX).read_text()
