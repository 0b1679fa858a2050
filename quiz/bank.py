"""Load and validate the question bank and the quiz definition.

Instructors extend the bank by adding YAML files, so every mistake must be easy to find: errors are
collected (not stopped at the first) and each names the file, the question id and the line.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from quiz.generators import NO_GENERATORS, Generators
from quiz.model import Option, Question, Source
from quiz.schema import BANK_FILE_SCHEMA, DEFINITION_SCHEMA

DEFINITION_NAME = "quiz.yaml"


@dataclass(frozen=True)
class Problem:
    """One validation error, located."""

    file: str
    line: int
    qid: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        who = f" question {self.qid!r}:" if self.qid else ""
        return f"{where}:{who} {self.message}"


class BankError(ValueError):
    """The bank or definition is invalid; `problems` lists every error found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Bank:
    """The validated questions, in file order, and the generators their templates name."""

    questions: tuple[Question, ...]
    fingerprint: str  # sha256 over the loaded files: attempts record which bank they used
    generators: Generators = field(default=NO_GENERATORS, compare=False)

    def get(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def topic(self, topic: str) -> list[Question]:
        return [q for q in self.questions if q.topic == topic]

    @property
    def topics(self) -> list[str]:
        return sorted({q.topic for q in self.questions})


@dataclass(frozen=True)
class Pool:
    topics: tuple[str, ...]
    draw: int


@dataclass(frozen=True)
class QuizDefinition:
    """How a quiz is drawn and graded (quiz.yaml; by default 10 questions, pass mark 80%)."""

    pools: tuple[Pool, ...]
    title: str = "Quiz"
    questions: int = 10
    pass_mark: float = 0.8
    attempt_limit: int = 3
    cooldown_seconds: int = 8 * 3600


# ----------------------------------------------------------------------------------- locations


def _line_of(node: yaml.Node | None, path: Sequence[Any]) -> int:
    """1-based line of the YAML node at `path` (deepest node that exists)."""
    line = node.start_mark.line + 1 if node is not None else 0
    for key in path:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            nxt = node.value[key]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _read_yaml(path: Path, problems: list[Problem]) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), 0, None, f"cannot read: {exc}"))
        return None, None
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problems.append(Problem(str(path), line, None, f"YAML syntax: {exc.problem or exc}"))
    except yaml.YAMLError as exc:
        problems.append(Problem(str(path), 0, None, f"YAML: {exc}"))
    return None, None


def _schema_problems(
    data: Any, schema: dict[str, Any], path: Path, root: yaml.Node | None
) -> list[Problem]:
    out = []
    validator = jsonschema.Draft202012Validator(schema)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        p = list(err.absolute_path)
        qid = None
        if len(p) >= 2 and p[0] == "questions" and isinstance(p[1], int):
            entry = data["questions"][p[1]]
            qid = entry.get("id") if isinstance(entry, dict) else None
            qid = qid if isinstance(qid, str) else f"#{p[1] + 1}"
        where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in p[2:]).lstrip(".")
        msg = f"{where}: {err.message}" if where else err.message
        out.append(Problem(str(path), _line_of(root, p), qid, msg))
    return out


# -------------------------------------------------------------------------------------- loading


def bank_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files of the given files/directories, sorted per directory (definition excluded)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.glob("*.yaml") if f.name != DEFINITION_NAME)
        else:
            files.append(p)
    return files


def _check_semantics(q: Question, generators: Generators, problems: list[Problem]) -> None:
    def bad(msg: str) -> None:
        problems.append(Problem(q.source.file, q.source.line, q.id, msg))

    for pattern in q.answer_patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            bad(f"answer_patterns: {pattern!r} is not a regular expression ({exc})")
    if q.generator is not None:
        spec = generators.get(q.generator)
        if spec is None:
            known = ", ".join(sorted(generators)) or "none: the assignment has no quiz_generators"
            bad(f"unknown generator {q.generator!r} (known: {known})")
            return
        if spec.type != q.type:
            bad(f"generator {q.generator!r} makes {spec.type!r} questions, not {q.type!r}")
        if q.options or q.answer is not None or q.accepted:
            bad("a generated question's answer and options are computed: remove them from YAML")
        for seed in range(5):
            try:
                g = generators.run(q.generator, random.Random(seed), q.params)
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                bad(f"generator {q.generator!r} failed with params {q.params}: {exc}")
                return
            for name, text in (
                ("prompt", q.prompt),
                ("code", q.code),
                ("explanation", q.explanation),
            ):
                try:
                    text.format_map(g.params)
                except KeyError as exc:
                    bad(
                        f"{name} uses {{{exc.args[0]}}}, which generator {q.generator!r} does not provide"
                    )
                    return
                except (ValueError, IndexError, AttributeError) as exc:
                    bad(f"{name} is not a valid template ({exc}); write {{{{ for a literal brace")
                    return
        return
    if q.params:
        bad("params are only used with a generator")
    if q.type in ("single", "code", "truefalse"):
        n = sum(o.correct for o in q.options)
        if n != 1:
            bad(f"a {q.type} question needs exactly one correct option, found {n}")
    if q.type == "multiple" and not any(o.correct for o in q.options):
        bad("a multiple answer question needs at least one correct option")
    if q.type == "code" and not q.code:
        bad("a code question needs a code snippet")
    if q.type not in ("code", "multiple", "numeric", "fill", "single", "truefalse"):
        bad(f"unknown type {q.type!r}")
    if q.type == "single" and q.code:
        bad("use type 'code' for a single choice question with a code snippet")
    texts = [o.text for o in q.options]
    if len(set(texts)) != len(texts):
        bad("two options have the same text")
    if q.type == "fill" and len({a.casefold() for a in q.accepted}) != len(q.accepted):
        bad("accepted answers repeat (they are compared case-insensitively)")


def question_from_dict(entry: dict[str, Any], topic: str, source: Source) -> Question:
    """Build a Question from a schema-valid bank entry (YAML shape)."""
    qtype = entry["type"]
    options: tuple[Option, ...] = tuple(
        Option(
            str(o["text"]).strip(),
            bool(o.get("correct", False)),
            str(o.get("feedback", "")).strip(),
        )
        for o in entry.get("options", ())
    )
    answer = entry.get("answer")
    if qtype == "truefalse" and "generator" not in entry:
        fb = entry.get("feedback") or {}
        options = (
            Option("True", answer is True, str(fb.get("true", "")).strip()),
            Option("False", answer is False, str(fb.get("false", "")).strip()),
        )
        answer = None
    return Question(
        id=entry["id"],
        topic=entry.get("topic", topic),
        type=qtype,
        prompt=str(entry["prompt"]).strip(),
        code=str(entry.get("code", "")).strip("\n"),
        options=options,
        answer=float(answer) if qtype == "numeric" and answer is not None else None,
        tolerance=float(entry.get("tolerance", 0.0)),
        accepted=tuple(str(a).strip() for a in entry.get("accepted", ())),
        explanation=str(entry.get("explanation", "")).strip(),
        points=float(entry.get("points", 1.0)),
        shuffle=bool(entry.get("shuffle", qtype != "truefalse")),
        generator=entry.get("generator"),
        params=dict(entry.get("params", {})),
        answer_patterns=tuple(entry.get("answer_patterns", ())),
        source=source,
    )


def question_to_dict(q: Question) -> dict[str, Any]:
    """The YAML shape of a question (inverse of `question_from_dict`); used by `quiz import`."""
    d: dict[str, Any] = {"id": q.id, "topic": q.topic, "type": q.type, "prompt": q.prompt}
    if q.code:
        d["code"] = q.code
    if q.generator:
        d["generator"] = q.generator
        if q.params:
            d["params"] = q.params
    elif q.type == "truefalse":
        right = next(o for o in q.options if o.correct)
        d["answer"] = right.text == "True"
        fb = {o.text.lower(): o.feedback for o in q.options if o.feedback}
        if fb:
            d["feedback"] = fb
    elif q.type == "numeric":
        d["answer"] = q.answer
        d["tolerance"] = q.tolerance
    elif q.type == "fill":
        d["accepted"] = list(q.accepted)
    else:
        d["options"] = [
            {
                "text": o.text,
                "correct": o.correct,
                **({"feedback": o.feedback} if o.feedback else {}),
            }
            for o in q.options
        ]
    if q.explanation:
        d["explanation"] = q.explanation
    if q.points != 1.0:
        d["points"] = q.points
    if q.answer_patterns:
        d["answer_patterns"] = list(q.answer_patterns)
    if not q.shuffle and q.type != "truefalse":
        d["shuffle"] = False
    return d


def load_bank(paths: Iterable[Path], generators: Generators = NO_GENERATORS) -> Bank:
    """Load and validate bank files/directories whose templates use ``generators``; raise
    BankError listing every problem found."""
    files = bank_files(paths)
    problems: list[Problem] = []
    questions: list[Question] = []
    seen: dict[str, Source] = {}
    digest = hashlib.sha256()
    if not files:
        raise BankError([Problem("<bank>", 0, None, "no bank files found")])
    for path in files:
        data, root = _read_yaml(path, problems)
        if data is None and root is None:
            continue
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        schema_errors = _schema_problems(data, BANK_FILE_SCHEMA, path, root)
        if schema_errors:
            problems += schema_errors
            continue
        default_topic = data.get("topic")
        for i, entry in enumerate(data["questions"]):
            source = Source(str(path), _line_of(root, ["questions", i]))
            topic = entry.get("topic", default_topic)
            if topic is None:
                problems.append(
                    Problem(
                        source.file,
                        source.line,
                        entry["id"],
                        "no topic (set it on the question or the file)",
                    )
                )
                continue
            q = question_from_dict(entry, topic, source)
            if q.id in seen:
                problems.append(
                    Problem(
                        source.file,
                        source.line,
                        q.id,
                        f"duplicate id (first defined at {seen[q.id]})",
                    )
                )
                continue
            seen[q.id] = source
            _check_semantics(q, generators, problems)
            questions.append(q)
    if problems:
        raise BankError(problems)
    return Bank(tuple(questions), digest.hexdigest(), generators)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(value: str | int | float) -> int:
    """Seconds from `90`, `"90s"`, `"30m"`, `"8h"` or `"1d"`."""
    if isinstance(value, int | float):
        return int(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90, 30m, 8h, 1d)")
    return int(float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)])


def load_definition(path: Path, bank: Bank | None = None) -> QuizDefinition:
    """Load the quiz definition (``quiz.yaml``) and check it against ``bank``."""
    path = Path(path)
    problems: list[Problem] = []
    data, root = _read_yaml(path, problems)
    if problems:
        raise BankError(problems)
    problems = _schema_problems(data, DEFINITION_SCHEMA, path, root)
    if problems:
        raise BankError(problems)
    q = data["quiz"]
    pools = tuple(Pool(tuple(p["topics"]), int(p["draw"])) for p in q["pools"])
    try:
        cooldown = parse_duration(q.get("cooldown", 8 * 3600))
    except ValueError as exc:
        raise BankError(
            [Problem(str(path), _line_of(root, ["quiz", "cooldown"]), None, str(exc))]
        ) from exc
    total = sum(p.draw for p in pools)
    definition = QuizDefinition(
        pools=pools,
        title=q.get("title", QuizDefinition.title),
        questions=int(q.get("questions", total)),
        pass_mark=float(q.get("pass_mark", 0.8)),
        attempt_limit=int(q.get("attempt_limit", 3)),
        cooldown_seconds=cooldown,
    )
    check_definition(definition, bank, str(path), root)
    return definition


def check_definition(
    definition: QuizDefinition,
    bank: Bank | None,
    file: str = "<definition>",
    root: yaml.Node | None = None,
) -> None:
    """Raise BankError unless the pools can be drawn from `bank` without repeats."""
    problems: list[Problem] = []
    total = sum(p.draw for p in definition.pools)
    if total != definition.questions:
        line = _line_of(root, ["quiz", "questions"])
        problems.append(
            Problem(
                file,
                line,
                None,
                f"pools draw {total} questions, but questions is {definition.questions}",
            )
        )
    seen: set[str] = set()
    for i, pool in enumerate(definition.pools):
        line = _line_of(root, ["quiz", "pools", i])
        dup = seen.intersection(pool.topics)
        if dup:
            problems.append(
                Problem(file, line, None, f"topic(s) {sorted(dup)} appear in more than one pool")
            )
        seen.update(pool.topics)
        if bank is not None:
            missing = [t for t in pool.topics if not bank.topic(t)]
            if missing:
                problems.append(Problem(file, line, None, f"no questions for topic(s) {missing}"))
            have = sum(len(bank.topic(t)) for t in pool.topics)
            if have < pool.draw:
                problems.append(
                    Problem(
                        file,
                        line,
                        None,
                        f"pool {list(pool.topics)} has {have} questions, draws {pool.draw}",
                    )
                )
    if problems:
        raise BankError(problems)
