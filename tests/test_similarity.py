"""``grader similarity`` on a made-up cohort of 30 notebooks (tests/similarity_cohort.py): the
solution, the untouched stub, typical mistakes (two of them made by two learners each), three
independent implementations of every graded part and three disguised copies of those. The copies
must rank first and pass the threshold; no pair of independent notebooks may pass it. Also: each
disguise on its own, the given code as boilerplate, outside sources, LMS zips and bad input."""

from __future__ import annotations

import ast
import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.cli import main
from grader.similarity import CODE_THRESHOLD, SOURCE_PREFIX, compare_cohort
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
        assert 0.0 <= row["code"] <= 1.0 and row["behaviour"] is None


def test_the_page_says_it_is_no_verdict_and_shows_the_copied_code_side_by_side(cohort_run):
    root, _, _ = cohort_run
    page = (root / "out" / "similarity.html").read_text()
    assert "not a verdict" in page and str(CODE_THRESHOLD) in page
    assert page.count("<mark>") > 20  # the matching code is marked, in both columns
    assert "alternative_1" in page and "copy_of_1" in page
    assert "<script" not in page and "http" not in page.split("</style>")[0]


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
