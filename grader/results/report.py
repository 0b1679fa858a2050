"""A grading's record and what only the report shows -> one self-contained ``report.html`` (Jinja;
pictures inline, no external requests).

The learner reads this page top down, so it opens with who and what was graded (the learner, the
file, when, its short hash) and the score, then what to fix first: the problems found in the
notebook, each with its graded part and its cell named as the learner sees it (``locations``).
Then what the checks said, the pictures drawn for them (``pictures``: the assignment's, the
training curves, the callback's figure), each at its own size, and their code's output as plain
text (no terminal codes, no host paths, no lines libraries print on their own: ``learner_output``).
The templates are in ``grader/results/templates``; :data:`_ENV` also renders the batch's
``index.html`` (``grader.batch.gradebook``).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import jinja2
import markupsafe

from grader import __version__
from grader.checking import Artifacts, scrub
from grader.results.learner_output import learner_output
from grader.results.locations import LocatedProblem
from grader.results.pictures import Picture
from grader.results.record import GradingResult


@dataclass
class ReportMaterial:
    """What the report shows beside the results record (none of it is in results.json): the
    data the checks left for it, the pictures drawn from that data, the problems found in the
    notebook, the assignment's title and credit line."""

    artifacts: Artifacts = field(default_factory=Artifacts)
    pictures: dict[str, Picture] = field(default_factory=dict)  # the report's, in order
    #: What ingestion found in the notebook, each with its graded part and its cell as the
    #: learner sees it (the report opens with these).
    problems: list[LocatedProblem] = field(default_factory=list)
    title: str = ""  # the assignment's title, the report's heading
    credit: str = ""  # the assignment's credit line, in the report's footer


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("grader.results", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: str) -> markupsafe.Markup:
    """Plain text with its `backtick` spans as <code> (everything else escaped)."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(_CODE_SPAN.sub(r"<code>\1</code>", escaped))


_ENV.filters["code_spans"] = code_spans

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


def _problems(material: ReportMaterial) -> list[LocatedProblem]:
    """The problems to show first: located ones, else the plain messages (an unreadable file)."""
    if material.problems:
        return material.problems
    return [LocatedProblem(message) for message in material.artifacts.problems]


def render_report(result: GradingResult, material: ReportMaterial | None = None) -> str:
    """The report of ``result``, with ``material`` (none: the record's own data only)."""
    material = material or ReportMaterial()
    pictures = [
        (picture, png_data_uri(picture.png))
        for picture in material.pictures.values()
        if picture.png
    ]
    percent = 100.0 * result.score / result.max_score if result.max_score else 0.0
    artifacts = material.artifacts
    return _ENV.get_template("report.html.j2").render(
        result=result,
        percent=percent,
        parts=result.part_scores(),
        pictures=pictures,
        code=artifacts.code,
        captured_output=learner_output(as_text(artifacts.captured_output)).strip("\n"),
        habits=artifacts.habits,
        plain=as_text,
        problems=_problems(material),
        short_hash=result.submission_sha256[:12],
        version=__version__,
        title=material.title,
        credit=material.credit,
    )
