"""Moodle XML export: lossless (option feedback, general feedback, numeric tolerance, fractions).

Each topic becomes a question category `$course$/top/<category>/<topic>`; a question's id is both its
name and its `idnumber`, and a `topic:<topic>` tag repeats the topic for importers that flatten
categories. Multiple answer fractions follow scoring.py: +100/#right, -100/#wrong.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from quiz.export.common import category_path, number, percent, topics_in_order
from quiz.model import Question
from quiz.richtext import text_to_html, to_html
from quiz.scoring import fraction

MOODLE_TYPE = {
    "single": "multichoice",
    "code": "multichoice",
    "multiple": "multichoice",
    "truefalse": "truefalse",
    "numeric": "numerical",
    "fill": "shortanswer",
}


def _text(parent: ET.Element, tag: str, value: str, fmt: str | None = "html") -> ET.Element:
    el = ET.SubElement(parent, tag, {"format": fmt} if fmt else {})
    ET.SubElement(el, "text").text = value
    return el


def _simple(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, tag).text = value


def _answer(
    parent: ET.Element, frac: str, text: str, feedback: str, fmt: str | None = "html"
) -> ET.Element:
    attrs = {"fraction": frac}
    if fmt:
        attrs["format"] = fmt
    a = ET.SubElement(parent, "answer", attrs)
    ET.SubElement(a, "text").text = text
    _text(a, "feedback", text_to_html(feedback))
    return a


def question_element(q: Question) -> ET.Element:
    """One <question> element."""
    el = ET.Element("question", {"type": MOODLE_TYPE[q.type]})
    _text(el, "name", q.id, fmt=None)
    _text(el, "questiontext", to_html(q.prompt, q.code))
    _text(el, "generalfeedback", text_to_html(q.explanation))
    _simple(el, "defaultgrade", number(q.points))
    _simple(el, "penalty", "0")
    _simple(el, "hidden", "0")
    _simple(el, "idnumber", q.id)
    if q.type in ("single", "code", "multiple"):
        _simple(el, "single", "true" if q.type != "multiple" else "false")
        _simple(el, "shuffleanswers", "true" if q.shuffle else "false")
        _simple(el, "answernumbering", "ABCD")
        for tag in ("correctfeedback", "partiallycorrectfeedback", "incorrectfeedback"):
            _text(el, tag, "")
        for o in q.options:
            _answer(el, percent(fraction(q, o)), text_to_html(o.text), o.feedback)
    elif q.type == "truefalse":
        for o in q.options:
            _answer(
                el,
                "100" if o.correct else "0",
                o.text.lower(),
                o.feedback,
                fmt="moodle_auto_format",
            )
    elif q.type == "numeric":
        assert q.answer is not None
        a = _answer(el, "100", number(q.answer), "", fmt=None)
        _simple(a, "tolerance", number(q.tolerance))
        _simple(el, "unitgradingtype", "0")
        _simple(el, "unitpenalty", "0.1000000")
        _simple(el, "showunits", "3")
        _simple(el, "unitsleft", "0")
    elif q.type == "fill":
        _simple(el, "usecase", "0")
        for accepted in q.accepted:
            _answer(el, "100", accepted, "", fmt="moodle_auto_format")
    tag = ET.SubElement(ET.SubElement(el, "tags"), "tag")
    ET.SubElement(tag, "text").text = f"topic:{q.topic}"
    return el


def to_moodle_xml(questions: Sequence[Question], category: str = "quiz") -> bytes:
    """A Moodle XML <quiz> document with one category per topic, in first-seen order."""
    root = ET.Element("quiz")
    for topic in topics_in_order(questions):
        cat = ET.SubElement(root, "question", {"type": "category"})
        _text(cat, "category", category_path(category, topic), fmt=None)
        for q in questions:
            if q.topic == topic:
                root.append(question_element(q))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_moodle_xml(questions: Sequence[Question], out: Path, title: str, category: str) -> None:
    out.write_bytes(to_moodle_xml(questions, category))
