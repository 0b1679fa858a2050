"""The data that flows between the quiz stages.

`Question` is a bank entry (static, or a template when `generator` is set); `Item` is one concrete
question in one learner's quiz (numbers filled in, options in display order); `ItemResult` and
`QuizResult` are what scoring returns. They are plain frozen dataclasses so every stage can be tested
alone and nothing downstream can mutate the bank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

QuestionType = Literal["single", "multiple", "truefalse", "numeric", "fill", "code"]
QUESTION_TYPES: tuple[str, ...] = ("single", "multiple", "truefalse", "numeric", "fill", "code")
CHOICE_TYPES: frozenset[str] = frozenset({"single", "multiple", "truefalse", "code"})

TYPE_LABELS: dict[str, str] = {
    "single": "single choice",
    "multiple": "multiple answer (select all that apply)",
    "truefalse": "true or false",
    "numeric": "numeric answer",
    "fill": "fill in the blank",
    "code": "code reading",
}


@dataclass(frozen=True)
class Source:
    """Where a question was defined, so every error can point at a file and line."""

    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.file else "<memory>"


@dataclass(frozen=True)
class Option:
    """One choice. `correct` is the truth; the fraction for multiple answer is derived, not typed."""

    text: str
    correct: bool
    feedback: str = ""


@dataclass(frozen=True)
class Question:
    """A bank entry. For `generator` questions, text fields are templates and answers are computed."""

    id: str
    topic: str
    type: str
    prompt: str
    code: str = ""
    options: tuple[Option, ...] = ()
    answer: float | None = None  # numeric
    tolerance: float = 0.0  # numeric, absolute
    accepted: tuple[str, ...] = ()  # fill: accepted answers, compared case-insensitively
    explanation: str = ""
    points: float = 1.0
    shuffle: bool = True
    generator: str | None = None
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # other ways a code snippet may write this question's answer (regexes; the leak check)
    answer_patterns: tuple[str, ...] = ()
    source: Source = field(default=Source(), compare=False, hash=False)

    @property
    def is_template(self) -> bool:
        return self.generator is not None


@dataclass(frozen=True)
class Item:
    """One concrete question as a learner sees it; options are in display order."""

    number: int  # 1-based position in the quiz
    qid: str  # id of the bank question it came from
    question: Question  # concrete (generator already applied), options in display order

    @property
    def type(self) -> str:
        return self.question.type


@dataclass(frozen=True)
class ItemResult:
    """The verdict on one answer, with everything the learner needs to learn from it."""

    number: int
    qid: str
    score: float
    max_score: float
    given: str  # the learner's answer, human readable ("" when unanswered)
    expected: str  # the correct answer, human readable
    feedback: tuple[str, ...]  # feedback of the chosen options / answer checks
    explanation: str

    @property
    def status(self) -> str:
        if self.score >= self.max_score - 1e-9:
            return "correct"
        return "partial" if self.score > 1e-9 else "wrong"


@dataclass(frozen=True)
class QuizResult:
    """The total of one attempt. `passed` uses the definition's pass mark."""

    seed: int
    items: tuple[ItemResult, ...]
    score: float
    max_score: float
    pass_mark: float
    passed: bool

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (used by `quiz grade --json` and stored with web attempts)."""
        return {
            "seed": self.seed,
            "score": round(self.score, 6),
            "max_score": self.max_score,
            "percent": round(self.percent, 2),
            "pass_mark": self.pass_mark,
            "passed": self.passed,
            "questions": [
                {
                    "number": r.number,
                    "id": r.qid,
                    "score": round(r.score, 6),
                    "max_score": r.max_score,
                    "status": r.status,
                    "given": r.given,
                    "expected": r.expected,
                    "feedback": list(r.feedback),
                    "explanation": r.explanation,
                }
                for r in self.items
            ],
        }
