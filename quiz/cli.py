"""`quiz` command line: take, serve, grade, export, import, check, show.

Every subcommand loads the same validated bank and definition, so a broken bank file is reported
(file, question id, line) before anything else happens.
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
    BUILTIN_BANK,
    Bank,
    BankError,
    QuizDefinition,
    load_bank,
    load_definition,
    parse_duration,
)

EPILOG = """examples:
  quiz take --seed 7                       take the quiz in this terminal (works over ssh)
  quiz serve --db quiz.db                  web app on http://127.0.0.1:8000/
  quiz grade responses.json                score answers collected elsewhere
  quiz export --format moodle --out quiz.xml
  quiz check --bank my-questions/          validate the bank plus your own files
"""


def _add_bank_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bank",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="extra bank file or directory of *.yaml files, added to the built-in bank (repeatable)",
    )
    p.add_argument("--no-builtin-bank", action="store_true", help="use only the --bank files")
    p.add_argument(
        "--definition",
        type=Path,
        metavar="FILE",
        help=f"quiz definition YAML (default: {BUILTIN_BANK / 'quiz.yaml'})",
    )


def _load(args: argparse.Namespace) -> tuple[Bank, QuizDefinition]:
    paths = ([] if args.no_builtin_bank else [BUILTIN_BANK]) + list(args.bank)
    bank = load_bank(paths)
    return bank, load_definition(args.definition, bank=bank)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quiz",
        description="The graded quiz of the Object Localization course: a seeded variant per attempt, "
        "delivered in a terminal or a browser, scored offline, or exported to an LMS.",
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
        help="graded delivery: record the attempt in this SQLite store and enforce attempts and "
        "cooldown; the store draws the seed and it is never printed",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    _add_bank_args(p)

    p = sub.add_parser(
        "serve", help="run the web app (Flask; SQLite store; binds 127.0.0.1 by default)"
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
        help="SQLite path or sqlite:///PATH URL (default: $QUIZ_DATABASE or quiz.db)",
    )
    p.add_argument(
        "--instructor-token",
        default=os.environ.get("QUIZ_INSTRUCTOR_TOKEN"),
        help="token for /instructor (default: $QUIZ_INSTRUCTOR_TOKEN, else a random one is printed)",
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

    p = sub.add_parser("export", help="export the bank as Moodle XML, GIFT or a Canvas QTI 1.2 zip")
    p.add_argument("--format", required=True, choices=["moodle", "gift", "qti"])
    p.add_argument("--out", required=True, type=Path, help="output file (.xml, .gift.txt or .zip)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed for the parameterised questions (default: 0)"
    )
    p.add_argument(
        "--variants", type=int, default=1, help="copies of each parameterised question (default: 1)"
    )
    _add_bank_args(p)

    p = sub.add_parser("import", help="read a Moodle XML or GIFT file back into a bank YAML file")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=["moodle", "gift"], help="default: from the file name")
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
        help="mark right options and show explanations (instructor only: needs --db and the "
        "instructor token recorded there by `quiz serve`)",
    )
    p.add_argument("--db", help="the quiz store whose instructor token --answers checks")
    p.add_argument(
        "--instructor-token",
        default=os.environ.get("QUIZ_INSTRUCTOR_TOKEN"),
        help="the instructor token (default: $QUIZ_INSTRUCTOR_TOKEN)",
    )
    _add_bank_args(p)
    return parser


# ---------------------------------------------------------------------------------------- commands


def cmd_take(args: argparse.Namespace) -> int:
    from quiz import terminal
    from quiz.scoring import score_quiz
    from quiz.store import AttemptRefused, Store
    from quiz.variants import build_quiz
    from quiz.web import fmt_time

    bank, definition = _load(args)
    store = token = None
    seed = args.seed
    if args.db:
        if not args.learner:
            print("quiz take: --db needs --learner", file=sys.stderr)
            return 2
        if seed is not None:
            print(
                "quiz take: --seed is for practice; a graded attempt's (--db) seed is drawn by "
                "the store",
                file=sys.stderr,
            )
            return 2
        store = Store(args.db)
        try:
            attempt = store.start_attempt(
                args.learner,
                definition.attempt_limit,
                definition.cooldown_seconds,
                bank.fingerprint,
            )
        except AttemptRefused as exc:
            when = f" Next attempt from {fmt_time(exc.retry_at)}." if exc.retry_at else ""
            print(f"Attempt refused: {exc}{when}", file=sys.stderr)
            return 3
        seed, token = attempt.seed, attempt.token
    if seed is None:
        seed = secrets.randbelow(2**31)
    items = build_quiz(bank, definition, seed)
    graded = store is not None and token is not None
    try:
        result = terminal.take(items, definition, seed, show_seed=not graded)
    except terminal.Aborted as left:
        if not graded:
            print("\nLeft without submitting; nothing was scored.")
            return 1
        # A graded attempt left open could be resumed after looking its answers up: close it.
        result = score_quiz(items, left.answers, seed, definition.pass_mark)
        assert store is not None and token is not None
        store.submit(token, result)
        print(
            f"\nYou left the graded attempt: it is closed and scored with the answers given so "
            f"far, {terminal.fmt_points(result.score)}/{terminal.fmt_points(result.max_score)}."
        )
        return 1
    if store is not None and token is not None:
        store.submit(token, result)
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from quiz.store import Store
    from quiz.web import NO_SIGN_IN, WebConfig, create_app, make_server_for

    bank, definition = _load(args)
    token = args.instructor_token or secrets.token_urlsafe(16)
    cfg = WebConfig(
        db=args.db,
        bank=bank,
        definition=definition,
        instructor_token=token,
        attempt_limit=args.attempts,
        cooldown_seconds=parse_duration(args.cooldown) if args.cooldown else None,
    )
    app = create_app(cfg)
    Store(args.db).set_instructor_token(token)  # what `quiz show --answers --db` checks
    server = make_server_for(app, args.host, args.port)
    print(f"Serving the quiz on http://{args.host}:{server.server_port}/", flush=True)
    print(NO_SIGN_IN, flush=True)
    if not args.instructor_token:
        print(f"Instructor token (for /instructor): {token}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
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

    bank, definition = _load(args)
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

    bank, definition = _load(args)
    questions = concrete_bank(bank, seed=args.seed, variants=max(1, args.variants))
    path = export(questions, args.format, args.out, title=definition.title)
    print(f"Wrote {len(questions)} questions to {path} ({args.format})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from quiz.bank import question_to_dict
    from quiz.importers.gift import read_gift
    from quiz.importers.moodle import read_moodle

    fmt = args.format or ("moodle" if args.file.suffix.lower() == ".xml" else "gift")
    result = read_moodle(args.file) if fmt == "moodle" else read_gift(args.file)
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

    bank, definition = _load(args)
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


def cmd_show(args: argparse.Namespace) -> int:
    from quiz import terminal
    from quiz.variants import build_quiz

    bank, definition = _load(args)
    if args.answers:
        from quiz.store import Store

        if not args.db or not Store(args.db).instructor_token_ok(args.instructor_token):
            print(
                "quiz show: --answers is for the instructor: give --db STORE and the instructor "
                "token recorded there by `quiz serve --db STORE` (--instructor-token or "
                "$QUIZ_INSTRUCTOR_TOKEN)",
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
    except ValueError as exc:
        print(f"quiz: {exc}", file=sys.stderr)
        return 2
