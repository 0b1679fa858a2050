"""The terminal quiz driven through its prompts in a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import re
import sys

import pexpect
import pytest
from quiz_helpers import right_letters, wrong_letters

from quiz.variants import build_quiz

PROMPT = re.compile(r"Your answers?[^\r\n]*: ")


def spawn(*args: str, cwd=None) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "quiz", "take", *args],
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 100),
        cwd=cwd,
    )
    return child


def answer_all(child, items, answers):
    for it, ans in zip(items, answers, strict=True):
        child.expect(rf"Question {it.number}/10")
        child.expect(PROMPT)
        child.sendline(str(ans))


def test_all_right_passes_with_full_score(bank, definition, tmp_path):
    items = build_quiz(bank, definition, 7)
    child = spawn("--seed", "7", "--json", str(tmp_path / "r.json"))
    child.expect("Seed 7")
    answer_all(child, items, [right_letters(it) for it in items])
    child.expect(r"Submit\?")
    child.sendline("y")
    child.expect(r"Score: 10/10 \(100%\) - PASSED")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert json.loads((tmp_path / "r.json").read_text())["passed"] is True


def test_bad_input_is_asked_again_and_answers_can_be_changed(bank, definition):
    items = build_quiz(bank, definition, 8)
    answers = [wrong_letters(it) for it in items[:3]] + [right_letters(it) for it in items[3:]]
    child = spawn("--seed", "8")
    first = items[0]
    child.expect("Question 1/10")
    child.expect(PROMPT)
    child.sendline("zzz")  # not a valid letter nor a number
    child.expect("Sorry: .*Try again")
    child.expect(PROMPT)
    child.sendline(str(answers[0]))
    answer_all(child, items[1:], answers[1:])
    child.expect(r"Submit\?")
    child.sendline("1")  # change question 1 to the right answer
    child.expect(PROMPT)
    child.sendline(str(right_letters(first)))
    child.expect(r"Submit\?")
    child.sendline("y")
    child.expect(r"Question 2: \[wrong\] 0/1")
    child.expect("Correct answer:")
    child.expect(r"Score: 8/10 \(80%\) - PASSED")
    child.expect(pexpect.EOF)


def test_failing_score_and_feedback(bank, definition):
    items = build_quiz(bank, definition, 9)
    child = spawn("--seed", "9")
    answer_all(child, items, [""] * 10)  # skip everything
    child.expect(r"Submit\?")
    child.sendline("y")
    child.expect("No answer given")
    child.expect("Why: ")
    child.expect(r"Score: 0/10 \(0%\) - NOT PASSED")
    child.expect(pexpect.EOF)


def test_ctrl_d_leaves_without_scoring():
    child = spawn("--seed", "3")
    child.expect(PROMPT)
    child.sendeof()
    child.expect("Left without submitting")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


@pytest.mark.parametrize("learner", ["tina"])
def test_recorded_attempt_respects_the_cooldown(tmp_path, bank, definition, learner):
    db = str(tmp_path / "t.db")
    child = spawn("--learner", learner, "--db", db)
    for _ in range(10):
        child.expect(PROMPT)
        child.sendline("")
    child.expect(r"Submit\?")
    child.sendline("y")
    child.expect("Score: 0/10")
    child.expect(pexpect.EOF)
    child = spawn("--learner", learner, "--db", db)
    child.expect("Attempt refused: The waiting time")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_graded_attempt_hides_its_seed_and_quitting_closes_it(tmp_path, bank, definition):
    """`quiz take --db` never prints the seed; quitting scores the answers given so far and
    closes the attempt, so nothing stays open to look up and resume."""
    import sqlite3

    db = str(tmp_path / "t.db")
    child = spawn("--learner", "tina", "--db", db)
    child.expect("A graded attempt")
    child.expect(PROMPT)
    before = child.before
    child.sendline("q")
    child.expect("it is closed and scored with the answers given so far, 0/10")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    rows = (
        sqlite3.connect(db)
        .execute("SELECT submitted_at, score, seed, practice FROM quiz_attempts")
        .fetchall()
    )
    ((submitted_at, score, seed, practice),) = rows
    assert submitted_at is not None and score == 0 and not practice  # graded, closed
    assert str(seed) not in before and "Seed" not in before
    child = spawn("--learner", "tina", "--db", db)  # no open attempt to resume
    child.expect("Attempt refused: The waiting time")
    child.expect(pexpect.EOF)


def test_a_graded_attempt_seed_cannot_be_chosen(tmp_path):
    child = spawn("--learner", "tina", "--db", str(tmp_path / "t.db"), "--seed", "7")
    child.expect("--seed is for practice")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
