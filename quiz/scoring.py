"""Score answers: one set of rules for the terminal, the web app and offline grading.

Rules (the same ones the Moodle export encodes, so a quiz scores alike here and in an LMS):
single/code/true-false: full points for the right option. Multiple answer: each right option is worth
+1/(number right), each wrong one -1/(number wrong), total clamped to [0, 1]. Numeric: right within
the absolute tolerance. Fill in the blank: any accepted answer, ignoring case and extra spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from quiz.answers import letter, parse_choice, parse_choices, parse_number
from quiz.model import Item, ItemResult, Option, Question, QuizResult

EPS = 1e-9


def fraction(q: Question, option: Option) -> float:
    """The share of the points an option carries (multiple answer: +1/#right or -1/#wrong)."""
    if q.type != "multiple":
        return 1.0 if option.correct else 0.0
    right = sum(o.correct for o in q.options)
    wrong = len(q.options) - right
    return 1.0 / right if option.correct else (-1.0 / wrong if wrong else 0.0)


def normalise_text(s: str) -> str:
    return " ".join(str(s).split()).casefold()


def fmt_number(x: float) -> str:
    return format(x, ".6g")


def expected_text(q: Question) -> str:
    """The right answer as a learner should read it."""
    if q.type == "numeric":
        assert q.answer is not None
        tol = f" (± {fmt_number(q.tolerance)})" if q.tolerance else ""
        return fmt_number(q.answer) + tol
    if q.type == "fill":
        return " / ".join(q.accepted)
    return "; ".join(f"{letter(i)}) {o.text}" for i, o in enumerate(q.options) if o.correct)


def is_blank(raw: Any) -> bool:
    return (
        raw is None
        or (isinstance(raw, str) and not raw.strip())
        or (isinstance(raw, list | tuple) and not raw)
    )


def score_item(item: Item, raw: Any) -> ItemResult:
    """Score one answer. Unreadable answers score 0 and say why instead of raising."""
    q = item.question
    feedback: list[str] = []
    given = ""
    score = 0.0
    try:
        if is_blank(raw):
            feedback.append("No answer given.")
        elif q.type in ("single", "code", "truefalse"):
            i = parse_choice(q, raw)
            given = f"{letter(i)}) {q.options[i].text}"
            score = 1.0 if q.options[i].correct else 0.0
            if q.options[i].feedback:
                feedback.append(q.options[i].feedback)
        elif q.type == "multiple":
            chosen = parse_choices(q, raw)
            given = "; ".join(f"{letter(i)}) {q.options[i].text}" for i in chosen)
            score = min(1.0, max(0.0, sum(fraction(q, q.options[i]) for i in chosen)))
            feedback += [q.options[i].feedback for i in chosen if q.options[i].feedback]
            missed = [
                f"{letter(i)}) {o.text}"
                for i, o in enumerate(q.options)
                if o.correct and i not in chosen
            ]
            if missed:
                feedback.append("Also right: " + "; ".join(missed))
        elif q.type == "numeric":
            value = parse_number(raw)
            given = fmt_number(value)
            assert q.answer is not None
            score = (
                1.0 if abs(value - q.answer) <= q.tolerance + EPS * max(1.0, abs(q.answer)) else 0.0
            )
        elif q.type == "fill":
            given = str(raw).strip()
            ok = {normalise_text(a) for a in q.accepted}
            score = 1.0 if normalise_text(given) in ok else 0.0
    except ValueError as exc:
        given = str(raw)
        feedback.append(f"Could not read the answer: {exc}.")
        score = 0.0
    return ItemResult(
        number=item.number,
        qid=item.qid,
        score=score * q.points,
        max_score=q.points,
        given=given,
        expected=expected_text(q),
        feedback=tuple(feedback),
        explanation=q.explanation,
    )


def score_quiz(
    items: Sequence[Item], answers: Mapping[str, Any], seed: int, pass_mark: float
) -> QuizResult:
    """Score a whole attempt; `answers` maps question id to the raw answer (missing = blank)."""
    results = tuple(score_item(it, answers.get(it.qid)) for it in items)
    total = sum(r.score for r in results)
    max_total = sum(r.max_score for r in results)
    passed = max_total > 0 and total / max_total >= pass_mark - EPS
    return QuizResult(seed, results, total, max_total, pass_mark, passed)
