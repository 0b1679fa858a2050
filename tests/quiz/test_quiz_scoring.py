"""Scoring rules shared by the terminal, the web app and `quiz grade`."""

from __future__ import annotations

import pytest

from quiz.model import Item, Option, Question
from quiz.scoring import score_item, score_quiz


def item(**kw) -> Item:
    q = Question(id=kw.pop("id", "q-1"), topic="iou", prompt="p", **kw)
    return Item(1, q.id, q)


SINGLE = item(
    type="single", options=(Option("a", False, "no"), Option("b", True, "yes"), Option("c", False))
)
MULTI = item(
    type="multiple",
    options=(
        Option("a", True),
        Option("b", True),
        Option("c", False, "c is wrong"),
        Option("d", False),
    ),
)
NUM = item(type="numeric", answer=0.6, tolerance=0.005)
FILL = item(type="fill", accepted=("val_box_out_iou",))
TF = item(
    type="truefalse",
    options=(Option("True", False, "it is false"), Option("False", True)),
    shuffle=False,
)


@pytest.mark.parametrize(
    ("raw", "score"), [("B", 1), ("b", 1), (1, 1), ("b", 1), ("A", 0), (0, 0), (None, 0), ("", 0)]
)
def test_single(raw, score):
    assert score_item(SINGLE, raw).score == score


def test_single_reports_feedback_and_expected():
    r = score_item(SINGLE, "A")
    assert (
        r.status == "wrong" and r.feedback == ("no",) and r.expected == "B) b" and r.given == "A) a"
    )


def test_unreadable_choice_scores_zero_and_says_why():
    r = score_item(SINGLE, "Z")
    assert r.score == 0 and "Could not read" in r.feedback[0]


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        (["A", "B"], 1.0),
        ("A,B", 1.0),
        ("AB", 1.0),
        (["A"], 0.5),
        (["A", "B", "C"], 0.5),  # +1/2 +1/2 -1/2
        (["A", "C"], 0.0),
        (["C", "D"], 0.0),  # clamped at 0, never negative
        ([0, 1, 2, 3], 0.0),
    ],
)
def test_multiple_fractions(raw, score):
    assert score_item(MULTI, raw).score == pytest.approx(score)


def test_multiple_lists_missed_answers():
    r = score_item(MULTI, ["A", "C"])
    assert "c is wrong" in r.feedback and any("Also right: B) b" in f for f in r.feedback)
    assert r.status == "wrong"
    assert score_item(MULTI, ["A"]).status == "partial"


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        (0.6, 1),
        ("0.6", 1),
        ("0,6", 1),
        (0.605, 1),
        (0.5949, 0),
        ("0.61", 0),
        ("abc", 0),
        ("nan", 0),
        (True, 0),
    ],
)
def test_numeric_tolerance(raw, score):
    assert score_item(NUM, raw).score == score


@pytest.mark.parametrize(
    ("raw", "score"), [("val_box_out_iou", 1), ("  VAL_box_out_IOU ", 1), ("box_out_iou", 0)]
)
def test_fill_ignores_case_and_spaces(raw, score):
    assert score_item(FILL, raw).score == score


@pytest.mark.parametrize(
    ("raw", "score"), [(False, 1), ("f", 1), ("False", 1), ("B", 1), (True, 0), ("t", 0)]
)
def test_truefalse(raw, score):
    assert score_item(TF, raw).score == score


def test_pass_mark_boundary():
    items = [item(id=f"q-{i}", type="numeric", answer=float(i), tolerance=0) for i in range(10)]
    items = [Item(i + 1, it.qid, it.question) for i, it in enumerate(items)]
    eight = {f"q-{i}": float(i) for i in range(8)}
    r = score_quiz(items, eight, seed=1, pass_mark=0.8)
    assert (r.score, r.max_score, r.passed) == (8, 10, True)
    r = score_quiz(items, {f"q-{i}": float(i) for i in range(7)}, seed=1, pass_mark=0.8)
    assert r.passed is False and r.percent == pytest.approx(70)


def test_points_weight_the_total():
    heavy = item(id="heavy", type="numeric", answer=1.0, points=3)
    light = Item(
        2, "light", Question(id="light", topic="iou", prompt="p", type="numeric", answer=2.0)
    )
    r = score_quiz([heavy, light], {"heavy": 1.0, "light": 0}, seed=0, pass_mark=0.8)
    assert (r.score, r.max_score) == (3, 4)
