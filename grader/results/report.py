"""GradingResult -> one self-contained ``report.html`` (Jinja; pictures inline, no external requests).

The learner reads this page, so it shows what the checks said, their captured output as plain text
(no terminal codes, no host paths) and the pictures drawn for them (``pictures``: the assignment's,
the training curves, the callback's figure). The templates are in ``grader/results/templates``; :data:`_ENV` also renders the
batch's ``index.html`` (``grader.batch.gradebook``).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import jinja2

from grader import __version__
from grader.checking import scrub
from grader.files import write_atomically
from grader.results.scoring import GradingResult

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("grader.results", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def as_text(captured: str) -> str:
    """Captured terminal output as plain text: colour and cursor codes removed, a line rewritten
    with carriage returns or backspaces (Keras progress bars) shown as it ended, and host paths
    (library warnings name the venv's files) cut to file names."""
    text = _ANSI.sub("", captured).replace("\r\n", "\n")
    lines = []
    for line in text.split("\n"):
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
        if "\x08" in line:  # a backspace erases the character before it
            kept: list[str] = []
            for char in line:
                if char != "\x08":
                    kept.append(char)
                elif kept:
                    kept.pop()
            line = "".join(kept)
        lines.append(line)
    return scrub("\n".join(lines))


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_report(result: GradingResult) -> str:
    pictures = [
        (picture, png_data_uri(picture.png)) for picture in result.pictures.values() if picture.png
    ]
    percent = 100.0 * result.score / result.max_score if result.max_score else 0.0
    return _ENV.get_template("report.html.j2").render(
        result=result,
        percent=percent,
        parts=result.part_scores(),
        pictures=pictures,
        code=result.artifacts.code,
        captured_output=as_text(result.artifacts.captured_output),
        habits=result.artifacts.habits,
        plain=as_text,
        problems=result.artifacts.problems,
        extra=result.extra,
        version=__version__,
        title=result.title,
        credit=result.credit,
    )


def write_report(result: GradingResult, path: Path) -> None:
    write_atomically(path, render_report(result).encode("utf-8"))
