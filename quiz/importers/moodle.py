"""Moodle XML -> bank questions: the inverse of `quiz.export.moodle`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from quiz.importers.common import ImportResult, slug, topic_slug
from quiz.model import Option, Question
from quiz.richtext import from_html, html_to_text


def _text(el: ET.Element | None, path: str = "text") -> str:
    if el is None:
        return ""
    node = el.find(path)
    return (node.text or "") if node is not None else ""


def _rich(el: ET.Element | None) -> str:
    """Text of a <...><text> element, read as HTML unless the format says otherwise."""
    if el is None:
        return ""
    raw = _text(el)
    return (
        raw.strip()
        if el.get("format") in ("plain_text", "moodle_auto_format") and "<" not in raw
        else html_to_text(raw)
    )


def _fraction(a: ET.Element) -> float:
    try:
        return float(a.get("fraction", "0"))
    except ValueError:
        return 0.0


def parse_moodle(xml: bytes | str) -> ImportResult:
    """Questions from a Moodle XML document."""
    root = ET.fromstring(xml)
    result = ImportResult()
    topic = "imported"
    for n, el in enumerate(root.iter("question"), start=1):
        qtype = el.get("type", "")
        if qtype == "category":
            topic = topic_slug(_text(el.find("category")).rstrip("/").split("/")[-1] or "imported")
            continue
        name = _text(el.find("name"))
        qid = slug((el.findtext("idnumber") or "").strip() or name, f"q{n}")
        q_topic = topic
        for tag in el.iterfind("tags/tag"):
            t = _text(tag)
            if t.startswith("topic:"):
                q_topic = topic_slug(t[len("topic:") :])
        prompt, code = from_html(_text(el.find("questiontext")))
        explanation = html_to_text(_text(el.find("generalfeedback")))
        try:
            points = float(el.findtext("defaultgrade") or 1)
        except ValueError:
            points = 1.0
        common = {
            "id": qid,
            "topic": q_topic,
            "prompt": prompt,
            "code": code,
            "explanation": explanation,
            "points": points,
        }
        answers = el.findall("answer")
        if qtype == "multichoice":
            single = (el.findtext("single") or "true").strip().lower() in ("true", "1")
            options = tuple(
                Option(html_to_text(_text(a)), _fraction(a) > 0, _rich(a.find("feedback")))
                for a in answers
            )
            kind = ("code" if code else "single") if single else "multiple"
            shuffle = (el.findtext("shuffleanswers") or "true").strip().lower() in ("true", "1")
            result.questions.append(Question(type=kind, options=options, shuffle=shuffle, **common))
        elif qtype == "truefalse":
            fb = {
                _text(a).strip().lower(): (_fraction(a) > 0, _rich(a.find("feedback")))
                for a in answers
            }
            options = tuple(
                Option(
                    label,
                    fb.get(label.lower(), (False, ""))[0],
                    fb.get(label.lower(), (False, ""))[1],
                )
                for label in ("True", "False")
            )
            result.questions.append(
                Question(type="truefalse", options=options, shuffle=False, **common)
            )
        elif qtype == "numerical":
            right = [a for a in answers if _fraction(a) >= 100 and _text(a).strip() != "*"]
            if not right:
                result.warnings.append(
                    f"{qid}: numerical question without a fully correct answer, skipped"
                )
                continue
            value = float(_text(right[0]))
            tol = float(right[0].findtext("tolerance") or 0)
            result.questions.append(Question(type="numeric", answer=value, tolerance=tol, **common))
        elif qtype == "shortanswer":
            accepted = tuple(_text(a).strip() for a in answers if _fraction(a) >= 100)
            if not accepted:
                result.warnings.append(
                    f"{qid}: short answer without a fully correct answer, skipped"
                )
                continue
            if (el.findtext("usecase") or "0").strip() not in ("0", ""):
                result.warnings.append(
                    f"{qid}: case-sensitive in Moodle, the bank compares ignoring case"
                )
            result.questions.append(Question(type="fill", accepted=accepted, **common))
        else:
            result.warnings.append(f"{qid}: Moodle type {qtype!r} is not supported, skipped")
    return result


def read_moodle(path: Path) -> ImportResult:
    return parse_moodle(Path(path).read_bytes())
