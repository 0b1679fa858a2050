"""`quiz` command line: take, serve, grade, export, import, check, show.

Every subcommand loads the same validated bank and definition, those of an assignment's quiz
(``--assignment``, by default the only one installed), so a broken bank file is reported (file,
question id, line) before anything else happens. Attempts live in the course server's store
(``--db``: its database, or a file of their own), delivered by the server's quiz pages (``quiz
serve``: practice) or in this terminal (``quiz take --db``: graded).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import yaml

from quiz.bank import (
    Bank,
    BankError,
    QuizDefinition,
    load_bank,
    load_definition,
    parse_duration,
)

EPILOG = """examples:
  quiz take --seed 7                       practise in this terminal (works over ssh)
  quiz take --db quiz.db --learner ann     a graded attempt, recorded in the store
  quiz serve --db quiz.db                  practice web app on http://127.0.0.1:8000/quiz/
  quiz grade responses.json                score answers collected elsewhere
  quiz export --format moodle --out quiz.xml
  quiz check --bank my-questions/          validate the bank plus your own files
"""
DB_HELP = (
    "a file path or a database URL (sqlite:///PATH, postgresql://...; default: $QUIZ_DATABASE)"
)


def _add_bank_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--assignment",
        metavar="NAME",
        help="the assignment whose quiz (its quiz/ folder) this is: a name or a folder holding "
        "assignment.yaml (default: the only one installed)",
    )
    p.add_argument(
        "--bank",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="extra bank file or directory of *.yaml files, added to the assignment's (repeatable)",
    )
    p.add_argument(
        "--no-builtin-bank",
        action="store_true",
        help="use only the --bank files (and --definition)",
    )
    p.add_argument(
        "--definition",
        type=Path,
        metavar="FILE",
        help="quiz definition YAML (default: its quiz.yaml)",
    )


def _load(args: argparse.Namespace) -> tuple[Bank, QuizDefinition, str]:
    """The bank, the definition and the quiz's name (the LMS category of its exports)."""
    from quiz.source import quiz_of

    standalone = args.no_builtin_bank and args.definition is not None  # no assignment needed
    source = None if standalone and args.assignment is None else quiz_of(args.assignment)
    if source is None:
        if not standalone:
            raise ValueError(
                "the assignment has no quiz (no quiz/quiz.yaml): give --no-builtin-bank, --bank "
                "and --definition"
            )
        bank = load_bank(args.bank)
        return bank, load_definition(args.definition, bank), "quiz"
    bank, definition = source.load(
        args.bank, own=not args.no_builtin_bank, definition=args.definition
    )
    return bank, definition, source.name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quiz",
        description="An assignment's quiz: a seeded variant per attempt, delivered in a terminal "
        "or a browser, scored offline, or exported to an LMS.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "take", help="take the quiz in this terminal (keyboard only, works over ssh)"
    )
    p.add_argument(
        "--seed",
        type=int,
        help="practice variant (default: random, printed so it can be repeated); not with --db",
    )
    p.add_argument("--learner", help="learner id (needed with --db)")
    p.add_argument(
        "--db",
        help="graded delivery: record the attempt in this store (the course server's database "
        "or a file of its own) under its attempt limit and cooldown; the store draws the seed "
        "and it is never printed. " + DB_HELP,
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    _add_bank_args(p)

    p = sub.add_parser(
        "serve",
        help="run the practice web app (no sign-in, nothing graded; waitress; 127.0.0.1 by default)",
        description="Serve the quiz for practice at http://HOST:PORT/quiz/ (waitress): the course "
        "server's quiz pages without sign-in. Anyone can type any learner id, attempts are "
        "recorded as practice and never graded, and every page says so. The graded quiz runs "
        "signed in inside the course server (grader serve).",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, loopback only)"
    )
    p.add_argument(
        "--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)"
    )
    p.add_argument(
        "--db",
        default=os.environ.get("QUIZ_DATABASE", "quiz.db"),
        help=DB_HELP + ", else quiz.db",
    )
    p.add_argument(
        "--instructor-token",
        default=os.environ.get("QUIZ_INSTRUCTOR_TOKEN"),
        help="token for /quiz/instructor (default: $QUIZ_INSTRUCTOR_TOKEN, else a random one is "
        "printed)",
    )
    p.add_argument(
        "--attempts", type=int, help="attempt limit per learner (default: from the definition)"
    )
    p.add_argument(
        "--cooldown", help="wait between attempts, e.g. 90s, 30m, 8h (default: from the definition)"
    )
    _add_bank_args(p)

    p = sub.add_parser("grade", help="score a RESPONSES.json collected elsewhere")
    p.add_argument(
        "responses",
        type=Path,
        help='{"seed": S, "learner": ID, "answers": {QUESTION_ID: ANSWER}} or a list of them',
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the detailed results as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print per-question feedback")
    _add_bank_args(p)

    from quiz.export import EXPORTERS
    from quiz.importers import IMPORTERS

    p = sub.add_parser(
        "export",
        help="export the bank: "
        + "; ".join(f"{e.name} ({e.description})" for e in EXPORTERS.values()),
    )
    p.add_argument("--format", required=True, choices=list(EXPORTERS))
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output file (" + ", ".join(e.suffix for e in EXPORTERS.values()) + ")",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed for the parameterised questions (default: 0)"
    )
    p.add_argument(
        "--variants", type=int, default=1, help="copies of each parameterised question (default: 1)"
    )
    _add_bank_args(p)

    p = sub.add_parser("import", help="read a Moodle XML or GIFT file back into a bank YAML file")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=list(IMPORTERS), help="default: from the file name")
    p.add_argument("--out", required=True, type=Path, help="bank YAML file to write")

    p = sub.add_parser("check", help="validate the bank and the quiz definition")
    _add_bank_args(p)

    p = sub.add_parser(
        "show", help="print the quiz for a seed (a paper version, or --answers for the key)"
    )
    p.add_argument("--seed", type=int, required=True)
    p.add_argument(
        "--answers",
        action="store_true",
        help="mark right options and show explanations (instructor only: needs --db and an "
        "instructor token of that store, e.g. the one `quiz serve --db STORE` recorded)",
    )
    p.add_argument("--db", help="the store whose instructor token --answers checks")
    p.add_argument(
        "--instructor-token",
        default=os.environ.get("QUIZ_INSTRUCTOR_TOKEN"),
        help="the instructor token (default: $QUIZ_INSTRUCTOR_TOKEN)",
    )
    _add_bank_args(p)
    return parser


# ---------------------------------------------------------------------------------------- commands


def _is_default(name: str) -> bool:
    """Whether assignment ``name`` is the one chosen without ``--assignment`` (the only one
    installed, or ``$GRADER_ASSIGNMENT``'s), whose quiz also owns attempts stored without a
    name (by a release before each assignment had its quiz)."""
    from grader.assignment import AssignmentError, resolve

    try:
        return resolve(None).name == name
    except AssignmentError:
        return False


def _graded(
    args: argparse.Namespace, bank: Bank, definition: QuizDefinition, assignment: str
) -> int:
    """``quiz take --db``: a graded attempt in the store, its seed drawn there and never shown.
    The attempt is the quiz of ``assignment`` (as the course server records it: its attempt
    numbers, limit and cooldown); "" for a quiz of no assignment (``--no-builtin-bank``)."""
    from grader.server import roster
    from grader.server.db import open_store
    from grader.server.formatting import fmt_when
    from grader.server.quiz_attempts import QuizRefused, QuizService
    from quiz import terminal
    from quiz.scoring import score_quiz

    db = open_store(args.db)
    try:
        if roster.is_course(db):  # a course's roster: only its learners
            learner = roster.on_roster(db, args.learner)
        else:
            learner = roster.enrol(db, args.learner, "quiz take")
        quiz = QuizService(
            db,
            bank,
            definition,
            assignment=assignment,
            default=not assignment or _is_default(assignment),
        )
        try:
            attempt = quiz.start(learner)
        except QuizRefused as refused:
            when = f" Next attempt from {fmt_when(refused.retry_at)}." if refused.retry_at else ""
            print(f"Attempt refused: {refused.message}{when}", file=sys.stderr)
            return 3
        items = list(quiz.items(attempt.seed))
        try:
            result, answers = terminal.take(items, definition, attempt.seed, show_seed=False)
        except terminal.Aborted as left:
            # A graded attempt left open could be resumed after looking its answers up: close it.
            quiz.submit(attempt, left.answers)
            closed = score_quiz(items, left.answers, attempt.seed, definition.pass_mark)
            print(
                "\nYou left the graded attempt: it is closed and scored with the answers given so "
                f"far, {terminal.fmt_points(closed.score)}/{terminal.fmt_points(closed.max_score)}."
            )
            return 1
        quiz.submit(attempt, answers)
    finally:
        db.dispose()
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return 0


def cmd_take(args: argparse.Namespace) -> int:
    from quiz import terminal
    from quiz.variants import build_quiz

    bank, definition, name = _load(args)
    if args.db:
        if not args.learner:
            print("quiz take: --db needs --learner", file=sys.stderr)
            return 2
        if args.seed is not None:
            print(
                "quiz take: --seed is for practice; a graded attempt's (--db) seed is drawn by "
                "the store",
                file=sys.stderr,
            )
            return 2
        standalone = args.no_builtin_bank and args.definition is not None
        return _graded(args, bank, definition, "" if standalone and not args.assignment else name)
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    try:
        result, _ = terminal.take(build_quiz(bank, definition, seed), definition, seed)
    except terminal.Aborted:
        print("\nLeft without submitting; nothing was scored.")
        return 1
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from grader.server.practice import serve_practice

    bank, definition, _ = _load(args)
    cooldown = parse_duration(args.cooldown) if args.cooldown else None
    serve_practice(
        args.db,
        bank,
        definition,
        args.host,
        args.port,
        args.instructor_token,
        args.attempts,
        cooldown,
    )
    return 0


def _responses(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "responses" in data:
        data = data["responses"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError("expected an object with seed and answers, or a list of them")
    for i, r in enumerate(data):
        if not isinstance(r.get("seed"), int) or not isinstance(r.get("answers"), dict):
            raise ValueError(f"response {i + 1}: needs an integer 'seed' and an 'answers' object")
    return data


def cmd_grade(args: argparse.Namespace) -> int:
    from quiz import terminal
    from quiz.scoring import score_quiz
    from quiz.variants import build_quiz

    bank, definition, _ = _load(args)
    try:
        responses = _responses(json.loads(args.responses.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        print(f"quiz grade: {args.responses}: {exc}", file=sys.stderr)
        return 2
    out = []
    for i, r in enumerate(responses, start=1):
        who = str(r.get("learner", f"response {i}"))
        items = build_quiz(bank, definition, r["seed"])
        unknown = sorted(set(r["answers"]) - {it.qid for it in items})
        if unknown:
            print(
                f"{who}: warning: answers for questions not in quiz seed {r['seed']}: {', '.join(unknown)}",
                file=sys.stderr,
            )
        result = score_quiz(items, r["answers"], r["seed"], definition.pass_mark)
        verdict = "PASSED" if result.passed else "NOT PASSED"
        if args.verbose:
            print(f"== {who}")
            print(terminal.render_result(items, result))
        else:
            print(
                f"{who}: {terminal.fmt_points(result.score)}/{terminal.fmt_points(result.max_score)} "
                f"({result.percent:.0f}%) {verdict}"
            )
        out.append({"learner": who, **result.to_dict()})
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from quiz.export import export
    from quiz.variants import concrete_bank

    bank, definition, name = _load(args)
    questions = concrete_bank(bank, seed=args.seed, variants=max(1, args.variants))
    path = export(questions, args.format, args.out, title=definition.title, category=name)
    print(f"Wrote {len(questions)} questions to {path} ({args.format})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from quiz.bank import question_to_dict
    from quiz.importers import importer_for

    result = importer_for(args.file, args.format).read(args.file)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    doc = {"questions": [question_to_dict(q) for q in result.questions]}
    args.out.write_text(
        yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8"
    )
    print(f"Wrote {len(result.questions)} questions to {args.out}")
    try:
        load_bank([args.out])
    except BankError as exc:
        print(f"The imported bank does not validate:\n{exc}", file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from quiz.leaks import answer_leaks

    bank, definition, _ = _load(args)
    leaks = answer_leaks(bank, definition)
    if leaks:
        print("quiz: a question's code gives away another's answer:", file=sys.stderr)
        for leak in leaks:
            print(f"  {leak}", file=sys.stderr)
        return 1
    by_type: dict[str, int] = {}
    for q in bank.questions:
        by_type[q.type] = by_type.get(q.type, 0) + 1
    templates = sum(q.is_template for q in bank.questions)
    print(
        f"{len(bank.questions)} questions ({templates} parameterised) in {len(bank.topics)} topics: OK"
    )
    print("  by type: " + ", ".join(f"{k} {v}" for k, v in sorted(by_type.items())))
    for t in bank.topics:
        print(f"  {t}: {len(bank.topic(t))}")
    print(
        f"quiz: {definition.questions} questions from {len(definition.pools)} pools, pass {definition.pass_mark:.0%}, "
        f"{definition.attempt_limit} attempts, cooldown {definition.cooldown_seconds} s"
    )
    return 0


def _is_instructor(db_value: str | None, token: str | None) -> bool:
    if not db_value or not token:
        return False
    from grader.server.db import open_store
    from grader.server.roster import identify

    db = open_store(db_value)
    try:
        identity = identify(db, token)
    finally:
        db.dispose()
    return identity is not None and identity.is_instructor


def cmd_show(args: argparse.Namespace) -> int:
    from quiz import terminal
    from quiz.variants import build_quiz

    bank, definition, _ = _load(args)
    if args.answers and not _is_instructor(args.db, args.instructor_token):
        print(
            "quiz show: --answers is for the instructor: give --db STORE and an instructor "
            "token of that store, e.g. the one `quiz serve --db STORE` recorded "
            "(--instructor-token or $QUIZ_INSTRUCTOR_TOKEN)",
            file=sys.stderr,
        )
        return 2
    items = build_quiz(bank, definition, args.seed)
    print(f"{definition.title} (seed {args.seed})")
    for it in items:
        print()
        print(terminal.render_item(it, len(items), show_answer=args.answers))
    return 0


COMMANDS = {
    "take": cmd_take,
    "serve": cmd_serve,
    "grade": cmd_grade,
    "export": cmd_export,
    "import": cmd_import,
    "check": cmd_check,
    "show": cmd_show,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `quiz` console script and `python -m quiz`."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BankError as exc:
        print(f"quiz: the question bank is invalid:\n{exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # AssignmentError, RosterError and a store that cannot open too
        print(f"quiz: {exc}", file=sys.stderr)
        return 2
