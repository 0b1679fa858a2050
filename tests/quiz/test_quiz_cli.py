"""The `quiz` command line: grade, check, help, and `python -m quiz`."""

from __future__ import annotations

import json
import subprocess
import sys

from quiz_helpers import right_letters, wrong_letters

from quiz.cli import main
from quiz.variants import build_quiz


def test_python_m_quiz_help():
    out = subprocess.run(
        [sys.executable, "-m", "quiz", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for cmd in ("take", "serve", "grade", "export", "import", "check", "show"):
        assert cmd in out


def test_serve_help_says_loopback_and_practice():
    out = subprocess.run(
        [sys.executable, "-m", "quiz", "serve", "--help"], capture_output=True, text=True
    ).stdout
    assert "127.0.0.1" in out and "sqlite:///" in out and "practice" in out


def test_grade_scores_collected_answers(tmp_path, bank, definition, capsys):
    good = build_quiz(bank, definition, 21)
    weak = build_quiz(bank, definition, 22)
    responses = [
        {"learner": "ann", "seed": 21, "answers": {it.qid: right_letters(it) for it in good}},
        {
            "learner": "ben",
            "seed": 22,
            "answers": {
                it.qid: (right_letters(it) if i < 7 else wrong_letters(it))
                for i, it in enumerate(weak)
            },
        },
    ]
    path = tmp_path / "responses.json"
    path.write_text(json.dumps(responses))
    out_json = tmp_path / "results.json"
    assert main(["grade", str(path), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "ann: 10/10 (100%) PASSED" in out
    assert "ben: 7/10 (70%) NOT PASSED" in out
    results = json.loads(out_json.read_text())
    assert [r["passed"] for r in results] == [True, False]
    assert (
        results[1]["questions"][9]["status"] == "wrong"
        and results[1]["questions"][9]["explanation"]
    )


def test_grade_warns_about_answers_from_another_seed(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"seed": 1, "answers": {"no-such-question": "A"}}))
    assert main(["grade", str(path)]) == 0
    captured = capsys.readouterr()
    assert "not in quiz seed 1: no-such-question" in captured.err
    assert "0/10" in captured.out


def test_grade_rejects_malformed_input(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps([{"answers": {}}]))
    assert main(["grade", str(path)]) == 2
    assert "integer 'seed'" in capsys.readouterr().err


def test_check_reports_a_broken_extension(tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text(
        "topic: iou\nquestions:\n  - id: x-broken\n    type: numeric\n    prompt: p\n"
    )
    assert main(["check", "--bank", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml:3: question 'x-broken': 'answer' is a required property" in err


def test_check_ok(capsys):
    assert main(["check"]) == 0
    assert ": OK" in capsys.readouterr().out


def test_show_prints_the_same_quiz_as_take(bank, definition, capsys):
    assert main(["show", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    for it in build_quiz(bank, definition, 5):
        assert f"Question {it.number}/10" in out
        assert it.question.prompt.split()[0] in out


def test_show_answers_is_for_the_instructor_only(tmp_path, bank, definition, capsys, monkeypatch):
    from grader.server import roster
    from grader.server.db import open_store

    monkeypatch.delenv("QUIZ_INSTRUCTOR_TOKEN", raising=False)
    right = next(o.text for o in build_quiz(bank, definition, 5)[0].question.options if o.correct)
    db = str(tmp_path / "q.db")
    assert main(["show", "--seed", "5", "--answers"]) == 2
    assert main(["show", "--seed", "5", "--answers", "--db", db, "--instructor-token", "t"]) == 2
    store = open_store(db)
    roster.set_instructor_token(store, "the-token")
    store.dispose()
    assert main(["show", "--seed", "5", "--answers", "--db", db, "--instructor-token", "t"]) == 2
    captured = capsys.readouterr()
    assert "--answers is for the instructor" in captured.err and "Answer:" not in captured.out
    monkeypatch.setenv("QUIZ_INSTRUCTOR_TOKEN", "the-token")
    assert main(["show", "--seed", "5", "--answers", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "Answer:" in out and right in out


def test_serve_says_it_has_no_sign_in_and_records_its_token(tmp_path, capsys, monkeypatch):
    """`quiz serve` runs the practice app under waitress (never Werkzeug's development server)
    and records its instructor token in the store."""
    import grader.server.serve
    from grader.server.db import open_store
    from grader.server.roster import identify

    served = []

    def run_until_stopped(server):
        served.append({cls.__module__.split(".")[0] for cls in type(server).__mro__})

    monkeypatch.setattr(grader.server.serve, "run_until_stopped", run_until_stopped)
    db = str(tmp_path / "q.db")
    assert main(["serve", "--db", db, "--port", "0", "--instructor-token", "tok"]) == 0
    out = capsys.readouterr().out
    assert "Practice mode: this stand-alone quiz has no sign-in" in out
    assert served and "waitress" in served[0]  # waitress's server (the guarded front extends it)
    store = open_store(db)
    assert identify(store, "tok").is_instructor and identify(store, "nope") is None
    store.dispose()


def test_serve_refuses_a_course_servers_database(tmp_path, capsys):
    from grader.server import roster
    from grader.server.db import open_store

    db = tmp_path / "server.sqlite3"
    store = open_store(db)
    roster.add_learners(store, roster.read_roster("id\nann\n"), "http://x")
    store.dispose()
    assert main(["serve", "--db", str(db), "--port", "0"]) == 2
    assert "course server's database" in capsys.readouterr().err


def test_no_assignment_quiz_is_said(tmp_path, capsys):
    tiny = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "tiny_course"
    assert main(["check", "--assignment", str(tiny)]) == 2
    assert "has no quiz" in capsys.readouterr().err


def test_check_refuses_a_question_whose_code_shows_another_answer(tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text(
        "topic: callbacks\nquestions:\n  - id: x-leaky\n    type: code\n    prompt: What happens?\n"
        "    code: 'if logs[\"val_box_out_iou\"] > 0.9: stop()'\n"
        "    options: [{text: it stops, correct: true}, {text: it runs}]\n"
    )
    assert main(["check", "--bank", str(tmp_path)]) == 1
    assert "x-leaky shows es-monitor-key: val_box_out_iou" in capsys.readouterr().err


def test_take_on_a_course_store_is_graded_for_learners_on_its_roster_only(
    tmp_path, monkeypatch, capsys
):
    """`quiz take --db` on the course server's database: a roster learner's attempt counts in
    the gradebook like one taken on /quiz/; an id not on the roster is refused."""
    from grader.server import roster
    from grader.server.db import open_store
    from grader.server.exports import QuizScore, quiz_score

    db = tmp_path / "server.sqlite3"
    store = open_store(db)
    roster.add_learners(store, roster.read_roster("id\nann\n"), "http://x")
    assert main(["take", "--db", str(db), "--learner", "stranger"]) == 2
    assert "no learner 'stranger' on the roster" in capsys.readouterr().err
    replies = iter([""] * 10 + ["y"])  # skip every question, then submit
    monkeypatch.setattr("builtins.input", lambda prompt="": next(replies))
    assert main(["take", "--db", str(db), "--learner", "ANN"]) == 0
    assert "Score: 0/10" in capsys.readouterr().out
    assert quiz_score(store, "ann") == QuizScore(0.0, 10.0)
    store.dispose()


def test_take_with_an_assignment_records_that_assignments_quiz(tmp_path, monkeypatch, capsys):
    """`quiz take --db --assignment FOLDER`: the attempt is that assignment's quiz's, numbered
    by that quiz (the course server's gradebook counts it in that quiz's column), not the
    default quiz's; the default assignment's attempt without --assignment stays the default's."""
    from grader.server import roster
    from grader.server.db import open_store
    from grader.server.exports import QuizScore, quiz_score
    from grader.server.models import QuizAttempt
    from tests.server.live import tiny_course_with_quiz

    second = tiny_course_with_quiz(tmp_path)
    db = tmp_path / "server.sqlite3"
    store = open_store(db)
    roster.add_learners(store, roster.read_roster("id\nann\n"), "http://x")
    replies = iter(([""] * 10 + ["y"]) * 2)  # skip every question, then submit; twice
    monkeypatch.setattr("builtins.input", lambda prompt="": next(replies))
    assert main(["take", "--db", str(db), "--learner", "ann"]) == 0
    assert main(["take", "--db", str(db), "--learner", "ann", "--assignment", str(second)]) == 0
    capsys.readouterr()
    with store.read() as session:
        stored = {(a.assignment, a.number) for a in session.query(QuizAttempt)}
    assert stored == {("object_localization", 1), ("tiny_course", 1)}
    assert quiz_score(store, "ann", ("tiny_course",)) == QuizScore(0.0, 10.0)
    # the second quiz counts its own attempts: a second one now is refused by its cooldown
    assert main(["take", "--db", str(db), "--learner", "ann", "--assignment", str(second)]) == 3
    assert "Attempt refused" in capsys.readouterr().err
    store.dispose()
