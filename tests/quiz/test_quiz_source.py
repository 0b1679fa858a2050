"""The quiz names no course: any assignment with a quiz/ folder is one, its parameterised
questions' generators given by its own quiz_generators hook."""

from __future__ import annotations

import textwrap
import uuid

import pytest

from quiz.bank import BankError, load_bank
from quiz.cli import main
from quiz.source import quiz_of


@pytest.fixture
def course(tmp_path):
    """A minimal assignment of its own (a unique package name) with a two-question quiz."""
    folder = tmp_path / f"mini_{uuid.uuid4().hex[:8]}"
    (folder / "quiz").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "assignment.yaml").write_text(
        "parts: [{name: f}]\nhooks: {quiz_generators: gens:GENERATORS}\n"
    )
    (folder / "gens.py").write_text(
        textwrap.dedent(
            '''
            from quiz.generators import Generated, Generators

            GENERATORS = Generators()


            @GENERATORS.register("double", "numeric")
            def double(rng):
                """Twice a seeded number."""
                n = rng.randint(2, 50)
                return Generated({"n": n, "twice": 2 * n}, answer=2.0 * n)
            '''
        )
    )
    (folder / "quiz" / "q.yaml").write_text(
        "topic: sums\nquestions:\n"
        "  - {id: twice, type: numeric, generator: double, prompt: 'What is 2 x {n}?',"
        " explanation: '{twice}.'}\n"
        "  - {id: truth, type: truefalse, prompt: 'Is 1 < 2?', answer: true, explanation: 'one is less.'}\n"
    )
    (folder / "quiz" / "quiz.yaml").write_text(
        "quiz:\n  title: Mini quiz\n  pools:\n    - {topics: [sums], draw: 2}\n"
    )
    return folder


def test_an_assignments_quiz_and_its_generators(course):
    source = quiz_of(course)
    assert source is not None and source.name == course.name
    bank, definition = source.load()
    assert definition.title == "Mini quiz" and {q.id for q in bank.questions} == {"twice", "truth"}
    assert list(bank.generators) == ["double"]


def test_the_quiz_command_works_on_any_assignment(course, capsys):
    assert main(["check", "--assignment", str(course)]) == 0
    assert "2 questions (1 parameterised)" in capsys.readouterr().out
    assert main(["show", "--seed", "3", "--assignment", str(course)]) == 0
    out = capsys.readouterr().out
    assert "Mini quiz (seed 3)" in out and "What is 2 x " in out and "{n}" not in out


def test_a_generator_the_hook_does_not_give_is_refused_at_load(course):
    with pytest.raises(BankError, match=r"unknown generator 'double' \(known: none"):
        load_bank([course / "quiz"])  # without the assignment's generators


def test_an_assignment_without_a_quiz_has_none(tmp_path):
    folder = tmp_path / "noquiz"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "assignment.yaml").write_text("parts: [{name: f}]\n")
    assert quiz_of(folder) is None
