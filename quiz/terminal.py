"""Take the quiz in a terminal: plain prompts on stdin/stdout, so it works over ssh and in any tty.

No curses and no arrow keys: one line of input per question, re-asked until it can be read. After
the last question the learner can review and change answers, then submits and sees the score with
per-question feedback. Ctrl-D (end of input) or "q" leaves without submitting.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from quiz.answers import LETTERS, read_typed
from quiz.bank import QuizDefinition
from quiz.model import TYPE_LABELS, Item, QuizResult
from quiz.scoring import expected_text, score_quiz


class Aborted(Exception):
    """The learner left before submitting; `answers` holds those given so far (by question id)."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        super().__init__("left before submitting")
        self.answers = dict(answers or {})


def _width() -> int:
    return max(40, min(100, shutil.get_terminal_size((80, 24)).columns) - 2)


def _wrap(text: str, indent: str = "", hang: str | None = None) -> str:
    width = _width()
    hang = indent if hang is None else hang
    paras = text.split("\n")
    return "\n".join(
        textwrap.fill(p, width, initial_indent=indent, subsequent_indent=hang) if p.strip() else ""
        for p in paras
    )


def fmt_points(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def render_item(item: Item, total: int, show_answer: bool = False) -> str:
    """The question as text: number, type, prompt, code block, lettered options."""
    q = item.question
    lines = [
        f"Question {item.number}/{total}  ({TYPE_LABELS[q.type]}, {fmt_points(q.points)} pt)",
        "",
    ]
    lines.append(_wrap(q.prompt))
    if q.code:
        lines += ["", textwrap.indent(q.code, "    ")]
    if q.options:
        lines.append("")
        for i, o in enumerate(q.options):
            mark = ("* " if o.correct else "  ") if show_answer else ""
            lines.append(_wrap(f"{mark}{LETTERS[i]}) {o.text}", "  ", " " * (len(mark) + 5)))
    if show_answer:
        lines += ["", f"Answer: {expected_text(q)}"]
        if q.explanation:
            lines.append(_wrap(f"Why: {q.explanation}"))
    return "\n".join(lines)


def _prompt_for(item: Item) -> str:
    q = item.question
    n = len(q.options)
    if q.type == "truefalse":
        return "Your answer [t/f, Enter to skip]: "
    if q.type == "multiple":
        return f"Your answers, e.g. A,C [A-{LETTERS[n - 1]}, Enter to skip]: "
    if q.type in ("single", "code"):
        return f"Your answer [A-{LETTERS[n - 1]}, Enter to skip]: "
    if q.type == "numeric":
        return "Your answer (a number, Enter to skip): "
    return "Your answer (Enter to skip): "


def describe(item: Item, answer: Any) -> str:
    q = item.question
    if answer is None:
        return "(no answer)"
    if isinstance(answer, int):
        return f"{LETTERS[answer]}) {q.options[answer].text}"
    if isinstance(answer, list):
        return ", ".join(LETTERS[i] for i in answer)
    return str(answer)


def render_result(items: Sequence[Item], result: QuizResult, show_seed: bool = True) -> str:
    """Per-question feedback followed by the total and the verdict."""
    out = ["", "=" * 30 + " Results " + "=" * 30]
    for item, r in zip(items, result.items, strict=True):
        out += [
            "",
            f"Question {r.number}: [{r.status}] {fmt_points(r.score)}/{fmt_points(r.max_score)}",
        ]
        out.append(_wrap(item.question.prompt, "  "))
        out.append(f"  Your answer:    {r.given or '(none)'}")
        if r.status != "correct":
            out.append(f"  Correct answer: {r.expected}")
        out += [_wrap(f"- {fb}", "  ") for fb in r.feedback]
        if r.explanation:
            out.append(_wrap(f"Why: {r.explanation}", "  "))
    verdict = "PASSED" if result.passed else "NOT PASSED"
    out += [
        "",
        f"Score: {fmt_points(result.score)}/{fmt_points(result.max_score)} ({result.percent:.0f}%) - "
        f"{verdict} (pass mark {result.pass_mark * 100:.0f}%)",
    ]
    if show_seed:
        out.append(f"Quiz seed: {result.seed}")
    return "\n".join(out)


def take(
    items: Sequence[Item],
    definition: QuizDefinition,
    seed: int,
    read: Callable[[str], str] | None = None,
    out: TextIO | None = None,
    show_seed: bool = True,
) -> tuple[QuizResult, dict[str, Any]]:
    """Ask every question, let the learner review, score and print the feedback; the result and
    the answers (by question id, as scoring reads them: a store records them).

    `read` is `input` by default (and `out` stdout); it raises EOFError at end of input, which becomes Aborted
    (as do "q" and Ctrl-C), carrying the answers given so far. `show_seed=False` (graded delivery)
    never prints the seed: with it and `quiz show`, the variant could be looked up.
    """

    read = read or input  # looked up at call time
    out = out or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    def ask(item: Item) -> Any:
        while True:
            try:
                line = read(_prompt_for(item))
            except (EOFError, KeyboardInterrupt):
                raise Aborted(answers) from None
            if line.strip().lower() in ("q", "quit"):
                raise Aborted(answers)
            try:
                return read_typed(item, line)
            except ValueError as exc:
                say(f"  Sorry: {exc}. Try again.")

    total = len(items)
    say(definition.title)
    answers: dict[str, Any] = {}
    if show_seed:
        say(
            f"{total} questions, pass mark {definition.pass_mark * 100:.0f}%. Seed {seed} "
            "(the same seed gives the same quiz)."
        )
        say("Type your answer and press Enter. 'q' or Ctrl-D leaves without submitting.")
    else:
        say(f"{total} questions, pass mark {definition.pass_mark * 100:.0f}%. A graded attempt.")
        say(
            "Type your answer and press Enter. 'q' or Ctrl-D ends the attempt: it is scored "
            "with the answers given so far and counts as one of your attempts."
        )
    for item in items:
        say()
        say(render_item(item, total))
        answers[item.qid] = ask(item)
    while True:
        say()
        say("Your answers:")
        for item in items:
            say(f"  {item.number:2d}. {describe(item, answers[item.qid])}")
        try:
            line = (
                read(f"Submit? [y = submit, 1-{total} = change an answer, q = quit]: ")
                .strip()
                .lower()
            )
        except (EOFError, KeyboardInterrupt):
            raise Aborted(answers) from None
        if line in ("y", "yes"):
            break
        if line in ("q", "quit"):
            raise Aborted(answers)
        if line.isdigit() and 1 <= int(line) <= total:
            item = items[int(line) - 1]
            say()
            say(render_item(item, total))
            answers[item.qid] = ask(item)
        else:
            say("  Please type y, q or a question number.")
    result = score_quiz(items, answers, seed, definition.pass_mark)
    say(render_result(items, result, show_seed=show_seed))
    return result, answers
