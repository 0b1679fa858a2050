"""GIFT export (Moodle's plain-text format).

Text is written as [html] on a single line, every GIFT control character (~ = # { } : and the
backslash) escaped. GIFT cannot say a question's mark or whether to shuffle; a `// quiz:` comment
keeps the mark when it is not 1 (our importer reads it back, Moodle ignores comments).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from quiz.export.common import category_path, number, percent, topics_in_order
from quiz.model import Question
from quiz.richtext import text_to_html, to_html
from quiz.scoring import fraction

SPECIAL = "\\~=#{}:"


def escape(text: str) -> str:
    """Backslash-escape GIFT's control characters."""
    return "".join("\\" + c if c in SPECIAL else c for c in text)


def _h(text: str) -> str:
    return escape(text_to_html(text))


def _fb(feedback: str) -> str:
    return f"#{_h(feedback)}" if feedback else ""


def question_gift(q: Question) -> str:
    """One question as GIFT (no blank lines inside)."""
    head = []
    if q.points != 1:
        head.append(f"// quiz: points={number(q.points)}")
    lines = [f"::{escape(q.id)}::[html]{escape(to_html(q.prompt, q.code))}{{"]
    if q.type in ("single", "code"):
        lines += [("=" if o.correct else "~") + _h(o.text) + _fb(o.feedback) for o in q.options]
    elif q.type == "multiple":
        lines += [f"~%{percent(fraction(q, o))}%{_h(o.text)}{_fb(o.feedback)}" for o in q.options]
    elif q.type == "truefalse":
        right = next(o for o in q.options if o.correct)
        wrong = next(o for o in q.options if not o.correct)
        lines.append(f"{right.text.upper()}#{_h(wrong.feedback)}#{_h(right.feedback)}")
    elif q.type == "numeric":
        assert q.answer is not None
        lines[0] += "#"
        lines.append(f"={number(q.answer)}:{number(q.tolerance)}")
    elif q.type == "fill":
        lines += [f"={_h(a)}" for a in q.accepted]
    if q.explanation:
        lines.append(f"####{_h(q.explanation)}")
    lines.append("}")
    return "\n".join(head + lines)


def to_gift(questions: Sequence[Question], title: str = "Quiz", category: str = "quiz") -> str:
    """A GIFT file with a $CATEGORY per topic."""
    out = [f"// {title}: the quiz bank; question ids are the ::titles::.", ""]
    for topic in topics_in_order(questions):
        out += [f"$CATEGORY: {category_path(category, topic)}", ""]
        for q in questions:
            if q.topic == topic:
                out += [question_gift(q), ""]
    return "\n".join(out)


def write_gift(questions: Sequence[Question], out: Path, title: str, category: str) -> None:
    out.write_text(to_gift(questions, title, category), encoding="utf-8")
