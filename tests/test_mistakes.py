"""The course's catalogue of typical mistakes (assignments/object_localization/mistakes.yaml),
each graded as a learner's notebook: it loses points on its own part only, and its hint is shown
there (diagnosed from behaviour); no other mistake's hint is shown for it, and the solution gets
no hint at all. Graded in process, the part's checks and those of the parts that use it."""

from __future__ import annotations

import functools

import nbformat
import pytest

from grader.checking import InProcessSubmission, load_catalogue, run_checks
from tests.objloc import COURSE, SOLUTION_NOTEBOOK, ingest, ingest_notebook

CATALOGUE = load_catalogue(COURSE.folder)
#: The parts whose code calls each part (the checks that could be charged for its mistake).
USERS = {
    "create_example": ["data_generator"],
    "plot_bounding_box": ["ShowTestImages"],
    "IoU": ["create_model"],
    "create_model": ["ShowTestImages"],
}


@functools.cache
def solution_definitions() -> dict[str, str]:
    return {name: info.source for name, info in ingest(SOLUTION_NOTEBOOK).parts.items()}


def with_mistake(mistake):
    """The solution notebook with the mistake's edit in its part's definition."""
    nb = nbformat.read(SOLUTION_NOTEBOOK, as_version=4)
    original = solution_definitions()[mistake.part]
    cell = next(c for c in nb.cells if original in c.source)
    cell.source = cell.source.replace(original, mistake.changed(original))
    return ingest_notebook(nb)


def graded(ingested, parts):
    namespace = {"__name__": "submission"}
    exec(compile(ingested.source, "submission", "exec"), namespace)
    return run_checks(InProcessSubmission(namespace, ingested, COURSE), parts=list(parts))


@functools.cache
def grading(ident: str):
    mistake = next(m for m in CATALOGUE if m.ident == ident)
    return graded(with_mistake(mistake), [mistake.part, *USERS.get(mistake.part, [])])


def test_the_catalogue_covers_every_part_and_applies_to_the_solution():
    assert {m.part for m in CATALOGUE} == set(COURSE.part_names)
    for mistake in CATALOGUE:
        original = solution_definitions()[mistake.part]
        assert mistake.changed(original) != original, mistake.ident


def test_the_solution_gets_every_point_and_no_hint():
    results = graded(ingest(SOLUTION_NOTEBOOK), COURSE.part_names)
    assert [r.name for r in results if not r.passed] == []
    assert not any("Hint:" in r.message for r in results)


@pytest.mark.parametrize("ident", [m.ident for m in CATALOGUE])
def test_a_mistake_costs_its_own_part_with_its_hint(ident):
    mistake = next(m for m in CATALOGUE if m.ident == ident)
    results = grading(ident)
    lost = [r for r in results if not r.passed]
    assert lost, f"{ident} got full marks"
    assert {r.part for r in lost} == {mistake.part}, [(r.part, r.message[:120]) for r in lost]
    messages = " ".join(r.message for r in lost)
    assert mistake.hint in " ".join(messages.split()), messages


@pytest.mark.parametrize("ident", [m.ident for m in CATALOGUE])
def test_no_other_mistakes_hint_is_shown(ident):
    messages = " ".join(" ".join(r.message for r in grading(ident)).split())
    mistake = next(m for m in CATALOGUE if m.ident == ident)
    shown = [
        other.ident
        for other in CATALOGUE
        if other.hint != mistake.hint and other.hint not in mistake.hint and other.hint in messages
    ]
    assert shown == [], messages
