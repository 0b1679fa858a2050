"""The bank: the built-in questions are valid and broad; mistakes are reported with file, id, line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from quiz.bank import (
    BankError,
    Pool,
    QuizDefinition,
    check_definition,
    load_bank,
    load_definition,
    parse_duration,
)
from quiz.model import QUESTION_TYPES

REQUIRED_TOPICS = {
    "localization", "data", "generator", "functional-api", "shapes", "losses",
    "iou", "metric", "callbacks", "lr-schedule", "early-stopping", "curves",
}  # fmt: skip


def test_builtin_bank_is_broad(bank):
    assert len(bank.questions) >= 40
    assert set(bank.topics) >= REQUIRED_TOPICS
    assert {q.type for q in bank.questions} == set(QUESTION_TYPES)
    assert sum(q.is_template for q in bank.questions) >= 3
    assert all(q.explanation for q in bank.questions), "every question explains its answer"


def test_builtin_definition_matches_the_course(definition):
    assert definition.questions == 10
    assert definition.pass_mark == pytest.approx(0.8)
    assert definition.attempt_limit >= 1 and definition.cooldown_seconds > 0


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def errors_for(bank):
    """The problems of one extra bank file, validated with the course's generators."""

    def errors(tmp_path: Path, text: str) -> list[str]:
        write(tmp_path, "extra.yaml", text)
        with pytest.raises(BankError) as info:
            load_bank([tmp_path], bank.generators)
        return [str(p) for p in info.value.problems]

    return errors


def test_schema_error_names_file_question_and_line(tmp_path, errors_for):
    errs = errors_for(
        tmp_path,
        """\
        topic: iou
        questions:
          - id: fine-one
            type: truefalse
            prompt: Fine.
            answer: true
          - id: no-options
            type: single
            prompt: Where are my options?
        """,
    )
    assert len(errs) == 1
    assert "extra.yaml:7:" in errs[0]
    assert "'no-options'" in errs[0] and "'options' is a required property" in errs[0]


def test_nested_schema_error_points_at_the_nested_line(tmp_path, errors_for):
    errs = errors_for(
        tmp_path,
        """\
        topic: iou
        questions:
          - id: bad-option
            type: single
            prompt: Pick.
            options:
              - text: a
                correct: true
              - txt: b
        """,
    )
    assert "extra.yaml:9:" in errs[0] and "options[1]" in errs[0] and "'bad-option'" in errs[0]


def test_yaml_syntax_error_has_a_line(tmp_path, errors_for):
    errs = errors_for(tmp_path, "questions:\n  - id: x\n    prompt: a: b\n")
    assert "extra.yaml:3:" in errs[0] and "YAML syntax" in errs[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "type: single\n    prompt: p\n    options: [{text: a, correct: true}, {text: b, correct: true}]",
            "exactly one correct option, found 2",
        ),
        ("type: numeric\n    prompt: p\n    generator: no_such_thing", "unknown generator"),
        ("type: numeric\n    prompt: 'IoU {nope}'\n    generator: iou_two_boxes", "uses {nope}"),
        ("type: single\n    prompt: p\n    generator: iou_two_boxes", "makes 'numeric' questions"),
        (
            "type: multiple\n    prompt: p\n    options: [{text: a}, {text: b}]",
            "at least one correct",
        ),
    ],
)
def test_semantic_errors(tmp_path, errors_for, body, message):
    errs = errors_for(tmp_path, f"topic: iou\nquestions:\n  - id: the-question\n    {body}\n")
    assert any(message in e and "'the-question'" in e and "extra.yaml:3:" in e for e in errs), errs


def test_duplicate_id_across_files(tmp_path):
    write(
        tmp_path,
        "a.yaml",
        "topic: iou\nquestions:\n  - {id: same-id, type: truefalse, prompt: p, answer: true}\n",
    )
    write(
        tmp_path,
        "b.yaml",
        "topic: iou\nquestions:\n  - {id: same-id, type: truefalse, prompt: q, answer: false}\n",
    )
    with pytest.raises(BankError) as info:
        load_bank([tmp_path])
    assert "b.yaml:3: question 'same-id': duplicate id (first defined at" in str(info.value)


def test_all_errors_are_reported_at_once(tmp_path, errors_for):
    errs = errors_for(
        tmp_path,
        """\
        topic: iou
        questions:
          - {id: a-1, type: single, prompt: p}
          - {id: a-2, type: fill, prompt: p}
        """,
    )
    assert len(errs) == 2


def test_extending_the_assignments_bank(tmp_path, bank, source):
    write(
        tmp_path,
        "mine.yaml",
        "topic: iou\nquestions:\n  - {id: my-q, type: truefalse, prompt: p, answer: true}\n",
    )
    extended, _ = source.load([tmp_path])
    assert len(extended.questions) == len(bank.questions) + 1
    assert extended.get("my-q").topic == "iou"


def test_definition_must_be_drawable(bank):
    with pytest.raises(BankError, match="draw 3 questions, but questions is 10"):
        check_definition(QuizDefinition(pools=(Pool(("iou",), 3),)), bank)
    with pytest.raises(BankError, match="has 4 questions, draws 9"):
        check_definition(QuizDefinition(pools=(Pool(("callbacks",), 9),), questions=9), bank)
    with pytest.raises(BankError, match="more than one pool"):
        check_definition(
            QuizDefinition(pools=(Pool(("iou",), 1), Pool(("iou",), 1)), questions=2), bank
        )


def test_definition_file_error_has_line(tmp_path, bank):
    path = write(
        tmp_path,
        "quiz.yaml",
        "quiz:\n  questions: 2\n  pools:\n    - topics: [iou]\n      draw: one\n",
    )
    with pytest.raises(BankError, match=r"quiz.yaml:5:.*'one' is not of type 'integer'"):
        load_definition(path, bank)


def test_parse_duration():
    assert parse_duration("8h") == 8 * 3600
    assert parse_duration("30m") == 1800
    assert parse_duration(90) == 90
    assert parse_duration("1d") == 86400
    with pytest.raises(ValueError):
        parse_duration("soon")
