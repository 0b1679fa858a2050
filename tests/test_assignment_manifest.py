"""A bad assignment.yaml is refused with a message that says where and what to write: the
manifest is checked against its JSON Schema (grader.assignment.MANIFEST_SCHEMA), every problem
named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.assignment import HOOKS, AssignmentError, load


def folder_with(tmp_path: Path, manifest: str) -> Path:
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "assignment.yaml").write_text(manifest)
    return folder


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("title: no parts\n", "no graded part (parts: [...])"),
        ("parts: []\n", "parts is empty: list the graded parts"),
        ("- a list\n", "expected a mapping of settings"),
        ("", "expected a mapping of settings"),
        ("parts: [{kind: function}]\n", "parts[0] needs a name"),
        (
            "parts: [{name: f, kind: modle}]\n",
            "parts[0].kind must be one of function, class, model, metric, callback, schedule",
        ),
        ("parts: [{name: f, knd: model}]\n", "parts[0]: unknown key(s) knd; the known ones are"),
        ("parts: [{name: f}]\nbundel: [a]\n", "unknown setting(s) bundel; the known ones are"),
        ("parts: [{name: f}]\nhooks: {quizz: a:b}\n", "hooks: unknown hook(s) quizz"),
        (
            "parts: [{name: f}]\nhooks: {known_causes: 'hints KNOWN'}\n",
            "hooks.known_causes should be module:attribute",
        ),
        ("parts: [{name: f}]\nbundle: notalist\n", "bundle should be a list"),
    ],
)
def test_a_bad_manifest_says_where_and_what(tmp_path, manifest, message):
    with pytest.raises(AssignmentError) as refused:
        load(folder_with(tmp_path, manifest))
    assert message in str(refused.value)
    assert "assignment.yaml" in str(refused.value)


def test_every_problem_is_named_at_once(tmp_path):
    with pytest.raises(AssignmentError) as refused:
        load(folder_with(tmp_path, "parts: [{name: f, kind: x}]\nhooks: {nope: a:b}\n"))
    assert "parts[0].kind" in str(refused.value) and "unknown hook(s) nope" in str(refused.value)


def test_a_good_manifest_loads_with_its_hooks(tmp_path):
    manifest = "parts: [{name: f, kind: model}]\nhooks: {quiz_generators: gens:GENERATORS}\n"
    assignment = load(folder_with(tmp_path, manifest))
    assert assignment.parts[0].kind == "model" and "quiz_generators" in HOOKS
    assert dict(assignment.hooks) == {"quiz_generators": "gens:GENERATORS"}


def test_two_folders_of_one_package_name_each_get_their_own_hook(tmp_path):
    """A copy of a course beside the original (or two courses both in a folder ``course``), in
    one process: each one's hook comes from its own folder, whichever was imported first."""
    manifest = "parts: [{name: f, kind: model}]\nhooks: {quiz_generators: gens:GENERATORS}\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = folder_with(tmp_path / "a", manifest), folder_with(tmp_path / "b", manifest)
    (first / "gens.py").write_text("GENERATORS = 'first'\n")
    (second / "only_here.py").write_text("GENERATORS = 'only in the second'\n")
    (second / "gens.py").write_text("from .only_here import GENERATORS  # noqa: F401\n")
    assert load(first).hook("quiz_generators") == "first"
    assert load(second).hook("quiz_generators") == "only in the second"
    assert load(first).hook("quiz_generators") == "first"  # each kept its own
