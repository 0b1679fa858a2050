"""What the instructor reads about a quiz: the pass rate, each question's difficulty, and the
attempts and questions as CSV downloads.

Why from the attempts' stored results: each submitted attempt keeps its scored result (per
question: id, score, max) in ``quiz_attempts.result``, so the statistics need no table of their
own and agree with what learners were shown. The classical difficulty index of a question is the
mean share of its points scored (1: everybody right, 0: nobody).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grader.server.formatting import fmt_when
from grader.server.models import QuizAttempt
from grader.spreadsheet import csv_text
from quiz.bank import Bank

ATTEMPT_COLUMNS = (
    "learner",
    "attempt",
    "seed",
    "started_utc",
    "submitted_utc",
    "score",
    "max_score",
    "percent",
    "passed",
)


@dataclass(frozen=True)
class Summary:
    submitted: int
    open: int
    learners: int
    passed: int
    pass_rate: float
    mean_score: float  # the mean share of the points, 0..1


@dataclass(frozen=True)
class QuestionStat:
    question: str
    topic: str
    type: str
    answered: int
    difficulty: float
    fully_correct: int


def summary(attempts: Sequence[QuizAttempt]) -> Summary:
    done = [a for a in attempts if a.submitted_at is not None]
    passed = sum(bool(a.passed) for a in done)
    shares = [a.score / a.max_score for a in done if a.score is not None and a.max_score]
    return Summary(
        submitted=len(done),
        open=len(attempts) - len(done),
        learners=len({a.learner_id for a in done}),
        passed=passed,
        pass_rate=passed / len(done) if done else 0.0,
        mean_score=sum(shares) / len(shares) if shares else 0.0,
    )


def _questions(attempt: QuizAttempt) -> list[dict[str, Any]]:
    return [q for q in (attempt.result or {}).get("questions", []) if isinstance(q, dict)]


def question_stats(attempts: Sequence[QuizAttempt], bank: Bank) -> list[QuestionStat]:
    """Per question answered in a submitted attempt, in id order."""
    scored: dict[str, list[tuple[float, float]]] = {}
    for attempt in attempts:
        for q in _questions(attempt):
            scored.setdefault(str(q.get("id")), []).append(
                (float(q.get("score") or 0.0), float(q.get("max_score") or 0.0))
            )
    known = {q.id: q for q in bank.questions}
    stats = []
    for qid in sorted(scored):
        pairs = scored[qid]
        most = sum(m for _, m in pairs)
        question = known.get(qid)
        stats.append(
            QuestionStat(
                question=qid,
                topic=question.topic if question else "?",
                type=question.type if question else "?",
                answered=len(pairs),
                difficulty=sum(s for s, _ in pairs) / most if most else 0.0,
                fully_correct=sum(s >= m - 1e-9 for s, m in pairs),
            )
        )
    return stats


def _utc(when: dt.datetime | None) -> str:
    return fmt_when(when).removesuffix(" UTC")


def attempts_csv(attempts: Sequence[QuizAttempt], bank: Bank) -> str:
    """One row per attempt, one column per bank question (its score, empty when not drawn)."""
    qids = [q.id for q in bank.questions]
    rows = []
    for a in attempts:
        per_question = {q.get("id"): q.get("score") for q in _questions(a)}
        percent = (
            round(100 * a.score / a.max_score, 2) if a.score is not None and a.max_score else ""
        )
        rows.append(
            [
                a.learner_id,
                a.number,
                a.seed,
                _utc(a.started_at),
                _utc(a.submitted_at),
                "" if a.score is None else round(a.score, 4),
                "" if a.max_score is None else a.max_score,
                percent,
                "" if a.passed is None else int(a.passed),
                *[per_question.get(qid, "") for qid in qids],
            ]
        )
    return csv_text([*ATTEMPT_COLUMNS, *qids], rows)


def questions_csv(stats: Sequence[QuestionStat]) -> str:
    return csv_text(
        ["question", "answered", "difficulty", "fully_correct"],
        ([s.question, s.answered, round(s.difficulty, 4), s.fully_correct] for s in stats),
    )
