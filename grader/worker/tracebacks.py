"""Learner-code error capture: what a learner sees of an exception raised by their code.

A traceback or exception text must name the learner's notebook cells and lines, never a path of
the grader, a library or the host (the scratch copy of the learner module included), and must not
be cut short by hostile code: :func:`learner_code` turns anything raised inside it (even
``SystemExit``) into a :class:`~grader.worker.state.LearnerFailure` carrying the scrubbed text.

:func:`learner_code` is also where the worker knows what is whose: it counts the times learner
code was entered (:func:`learner_entries`), so the request loop tells a failure of the worker's
own steps (before any learner code ran, or outside it: the grader's) from the learner's.
"""

from __future__ import annotations

import contextlib
import linecache
import re
import traceback
from collections.abc import Iterator

from .state import MAX_TRACEBACK, STATE, BadRequest, LearnerFailure, _len, _restore, _type

_CELL_MARK = re.compile(r"^# cell (\d+), line (\d+)$")
# Absolute paths (the scratch copy of the learner module, the venv, the host): never shown.
_PATH = re.compile(r"(?<![\w.:/])(?:/[\w.+@-]+){2,}/?")  # not a URL's //host/path


def _cell_line(lineno: int | None) -> tuple[int, int] | None:
    """(cell, line in that cell) of a line of the assembled learner module, from the
    ``# cell N, line L`` marks that ingestion writes above each kept statement."""
    lines = linecache.getlines(STATE.filename)
    if not lineno or lineno > _len(lines):
        return None
    for index in range(lineno - 2, -1, -1):
        match = _CELL_MARK.match(lines[index].rstrip("\n"))
        if match:
            return int(match.group(1)), int(match.group(2)) + lineno - index - 2
    return None  # a hoisted import, or code before the first mark


def scrub(text: str) -> str:
    """Host paths out of a message: the learner module is "your notebook", others keep their
    file name only (``.../keras/src/trainer.py`` -> ``trainer.py``)."""
    text = text.replace(STATE.filename, "your notebook")
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def _learner_trace(exc: BaseException) -> str:
    """The traceback restricted to the learner's frames, each named by notebook cell and line;
    no grader, library or host path is shown. The exception's own text is in the failure's
    message (``_exc_message``), so it is not repeated here."""
    try:
        te = traceback.TracebackException.from_exception(exc, limit=None, lookup_lines=True)
        lines = []
        for frame in te.stack:
            if frame.filename != STATE.filename:
                continue
            where = _cell_line(frame.lineno)
            place = f"cell {where[0]}, line {where[1]}" if where else f"line {frame.lineno}"
            code = (frame.line or "").strip()
            lines.append(f"  {place}, in {frame.name}\n" + (f"    {code}\n" if code else ""))
        head = "Traceback (your code only):\n" if lines else ""
        text = head + "".join(lines).rstrip("\n")
    except BaseException:
        text = f"{_type(exc).__name__}: <the exception could not be formatted>"
    if _len(text) > MAX_TRACEBACK:
        text = text[: MAX_TRACEBACK // 2] + "\n...[trimmed]...\n" + text[-MAX_TRACEBACK // 2 :]
    return text


_FRAME_LINE = re.compile(r'^\s*File "([^"]*)", line (\d+), in (.*)$')
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _clean_message(text: str) -> str:
    """An exception's text without the frames some libraries embed in it (TensorFlow's graph
    errors list their own call stack): the learner's frames become "cell N, line L", others go."""
    out: list[str] = []
    skip_code = False
    for line in _ANSI.sub("", text).splitlines():
        match = _FRAME_LINE.match(line)
        if match:
            where = _cell_line(int(match.group(2))) if match.group(1) == STATE.filename else None
            skip_code = where is None
            if where:
                out.append(f"  cell {where[0]}, line {where[1]}, in {match.group(3)}")
            continue
        if skip_code and line.startswith("    "):
            continue
        skip_code = False
        out.append(line)
    return scrub("\n".join(out))


def _exc_message(exc: BaseException) -> str:
    try:
        text = _clean_message("".join(traceback.format_exception_only(exc)).strip())
    except BaseException:
        text = _type(exc).__name__
    return text if _len(text) <= 1000 else text[:997] + "..."


_entries = [0]  # how many times learner code was entered in this process


def learner_entries() -> int:
    """How many times learner code was entered in this process (0: none has run yet)."""
    return _entries[0]


@contextlib.contextmanager
def learner_code(what: str) -> Iterator[None]:
    """Run learner code; any exception (even SystemExit) becomes a LearnerFailure."""
    _entries[0] += 1
    try:
        yield
        _restore()
    except (LearnerFailure, BadRequest):
        _restore()
        raise
    except SystemExit as exc:
        _restore()
        raise LearnerFailure(
            "learner_error", f"{what}: the code called sys.exit({exc.code!r})", _learner_trace(exc)
        ) from None
    except BaseException as exc:
        _restore()
        raise LearnerFailure(
            "learner_error", f"{what}: {_exc_message(exc)}", _learner_trace(exc)
        ) from None
