"""LMS exports: every file parses; counts and answers match; Moodle XML and GIFT read back unchanged."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile

import pytest
import yaml

from quiz.bank import load_bank, question_to_dict
from quiz.cli import main
from quiz.export import EXPORTERS, export
from quiz.export.gift import escape, to_gift
from quiz.export.moodle import to_moodle_xml
from quiz.importers.gift import parse_gift
from quiz.importers.moodle import parse_moodle
from quiz.model import Option, Question
from quiz.richtext import html_to_text
from quiz.variants import concrete_bank


@pytest.fixture(scope="module")
def questions(bank):
    return concrete_bank(bank, seed=3, variants=2)


def meaning(q: Question) -> tuple:
    """What a question means to a learner and a grader (not where it was defined)."""
    return (
        q.id,
        q.topic,
        q.type,
        q.prompt,
        q.code,
        q.explanation,
        q.points,
        frozenset((o.text, o.correct, o.feedback) for o in q.options),
        q.answer,
        q.tolerance,
        frozenset(q.accepted),
    )


def by_id(qs) -> dict[str, tuple]:
    """Exports group questions by topic, so compare by id."""
    out = {q.id: meaning(q) for q in qs}
    assert len(out) == len(qs)
    return out


TRICKY = Question(
    id="tricky-1",
    topic="iou",
    type="code",
    prompt="Braces {a}, tilde ~, equals =, hash #, colon: and a backslash \\n <b>not bold</b> & more\nsecond line",
    code='d = {"class_out": 1}\n\nif a <= b:  # comment ~=\n    pass',
    options=(
        Option("x == {1: 2}", True, "feedback with # and ~ and = and }"),
        Option("50% ~ 100%", False, "%25% is not a weight"),
    ),
    explanation="general: #### not a separator",
)
TRICKY_MULTI = Question(
    id="tricky-2",
    topic="iou",
    type="multiple",
    prompt="Select = ~",
    options=(Option("a", True), Option("b", True), Option("c", True), Option("d", False, "no")),
    explanation="",
    points=2.5,
)


def test_moodle_xml_counts_and_answers(questions):
    root = ET.fromstring(to_moodle_xml(questions, "object_localization"))
    qs = [q for q in root.iter("question") if q.get("type") != "category"]
    assert len(qs) == len(questions)
    assert {
        c.findtext("category/text") for c in root.iter("question") if c.get("type") == "category"
    } == {f"$course$/top/object_localization/{t}" for t in {q.topic for q in questions}}
    by_id = {q.id: q for q in questions}
    for el in qs:
        q = by_id[el.findtext("idnumber")]
        answers = el.findall("answer")
        if q.type == "multiple":
            fr = [float(a.get("fraction")) for a in answers]
            assert sum(f for f in fr if f > 0) == pytest.approx(100, abs=1e-3)
            assert [f > 0 for f in fr] == [o.correct for o in q.options]
        elif q.type == "numeric":
            assert float(answers[0].findtext("text")) == q.answer
            assert float(answers[0].findtext("tolerance")) == q.tolerance
        elif q.type == "fill":
            assert [a.findtext("text") for a in answers] == list(q.accepted)
        else:
            assert [a.get("fraction") == "100" for a in answers] == [o.correct for o in q.options]
            assert [html_to_text(a.findtext("feedback/text") or "") for a in answers] == [
                o.feedback for o in q.options
            ]


def test_moodle_read_back_is_unchanged(questions):
    back = parse_moodle(to_moodle_xml([*questions, TRICKY, TRICKY_MULTI]))
    assert back.warnings == []
    assert by_id(back.questions) == by_id([*questions, TRICKY, TRICKY_MULTI])


def test_gift_read_back_is_unchanged(questions):
    back = parse_gift(to_gift([*questions, TRICKY, TRICKY_MULTI]))
    assert back.warnings == []
    assert by_id(back.questions) == by_id([*questions, TRICKY, TRICKY_MULTI])


def test_gift_escapes_special_characters():
    text = to_gift([TRICKY])
    body = text.split("::tricky-1::", 1)[1]
    assert (
        "\\{a\\}" in body
        and "\\~" in body
        and "\\=" in body
        and "\\#" in body
        and "colon\\:" in body
    )
    assert "\\\\n" in body  # a literal backslash-n stays text, not a GIFT newline
    block = "::tricky-1::" + body.split("\n}\n", 1)[0]
    assert "\n\n" not in block and block.count("\n") == 3, (
        "one line per answer, no blank line inside"
    )
    assert escape("a{b}") == "a\\{b\\}"


def test_gift_parses_common_hand_written_forms():
    src = """
// comment
::Q1:: 1 + 1 = 2 {T}

::Q2:: What's between orange and green? { =yellow # right ~red # wrong ~blue # wrong }

::Q3:: Two plus {=two =2} equals four.

::Q4:: Number from 1 to 5? {#3:2}

::Q5:: Range {#1..5}

::Q6:: Matching { =a -> b =c -> d }
"""
    res = parse_gift(src)
    kinds = {q.id: q for q in res.questions}
    assert kinds["q1"].type == "truefalse" and kinds["q1"].options[0].correct
    assert kinds["q2"].type == "single" and [o.text for o in kinds["q2"].options if o.correct] == [
        "yellow"
    ]
    assert (
        kinds["q3"].type == "fill"
        and kinds["q3"].accepted == ("two", "2")
        and "_____" in kinds["q3"].prompt
    )
    assert (kinds["q4"].answer, kinds["q4"].tolerance) == (3, 2)
    assert (kinds["q5"].answer, kinds["q5"].tolerance) == (3, 2)
    assert any("matching" in w for w in res.warnings)


def test_qti_zip_counts_and_answers(tmp_path, questions):
    path = export(questions, "qti", tmp_path / "quiz.zip", title="T")
    with zipfile.ZipFile(path) as z:
        manifest = ET.fromstring(z.read("imsmanifest.xml"))
        hrefs = [f.get("href") for f in manifest.iterfind(".//{*}file")]
        assert len(hrefs) == 1 and hrefs[0] in z.namelist()
        assert manifest.find(".//{*}resource").get("type") == "imsqti_xmlv1p2"
        doc = ET.fromstring(z.read(hrefs[0]))
    items = list(doc.iterfind(".//{*}item"))
    assert len(items) == len(questions)
    by_id = {q.id: q for q in questions}
    for item in items:
        q = by_id[item.get("ident")]
        meta = {
            f.findtext("{*}fieldlabel"): f.findtext("{*}fieldentry")
            for f in item.iterfind(".//{*}qtimetadatafield")
        }
        assert meta["points_possible"] == "1"
        final = [rc for rc in item.iterfind(".//{*}respcondition") if rc.get("continue") == "No"]
        assert len(final) == 1 and final[0].findtext("{*}setvar") == "100"
        cond = final[0].find("{*}conditionvar")
        labels = {
            lab.get("ident"): lab.findtext(".//{*}mattext")
            for lab in item.iterfind(".//{*}response_label")
            if q.options
        }
        if q.type == "multiple":
            right = {labels[v.text] for v in cond.find("{*}and").findall("{*}varequal")}
            wrong = {labels[v.text] for v in cond.find("{*}and").iterfind("{*}not/{*}varequal")}
            assert right == {o.text for o in q.options if o.correct}
            assert wrong == {o.text for o in q.options if not o.correct}
        elif q.options:
            assert html_to_text(labels[cond.findtext("{*}varequal")]) == next(
                o.text for o in q.options if o.correct
            )
        elif q.type == "numeric":
            assert float(cond.findtext(".//{*}vargte")) == pytest.approx(q.answer - q.tolerance)
            assert float(cond.findtext(".//{*}varlte")) == pytest.approx(q.answer + q.tolerance)
        else:
            assert [v.text for v in cond.findall("{*}varequal")] == list(q.accepted)
    assert sum(1 for _ in doc.iterfind(".//{*}itemfeedback")) > len(items)


@pytest.mark.parametrize(("fmt", "name"), [("moodle", "q.xml"), ("gift", "q.gift")])
def test_cli_export_then_import_gives_a_valid_equivalent_bank(tmp_path, bank, fmt, name, capsys):
    out = tmp_path / name
    assert main(["export", "--format", fmt, "--out", str(out), "--seed", "4"]) == 0
    if fmt == "gift":  # the categories carry the assignment's name
        assert "$CATEGORY: $course$/top/object_localization/" in out.read_text()
    assert main(["import", str(out), "--format", fmt, "--out", str(tmp_path / "bank.yaml")]) == 0
    reread = load_bank([tmp_path / "bank.yaml"])
    original = concrete_bank(bank, seed=4)
    assert by_id(reread.questions) == by_id(original)
    doc = yaml.safe_load((tmp_path / "bank.yaml").read_text())
    first = doc["questions"][0]
    assert first == question_to_dict(next(q for q in original if q.id == first["id"]))
    capsys.readouterr()


def test_cli_export_qti(tmp_path, capsys):
    assert (
        main(["export", "--format", "qti", "--out", str(tmp_path / "q.zip"), "--variants", "3"])
        == 0
    )
    assert "questions to" in capsys.readouterr().out
    assert zipfile.is_zipfile(tmp_path / "q.zip")


def test_every_export_is_chosen_by_name_from_the_registry(tmp_path, questions):
    """`quiz export --format` offers exactly the registry's formats, and each writes its file."""
    from quiz.cli import build_parser

    export_parser = build_parser()._subparsers._group_actions[0].choices["export"]
    offered = next(a for a in export_parser._actions if a.dest == "format").choices
    assert list(offered) == list(EXPORTERS) == ["moodle", "gift", "qti"]
    for name, exporter in EXPORTERS.items():
        out = export(questions, name, tmp_path / f"quiz{exporter.suffix}", category="c")
        assert out.stat().st_size > 1000, name
    with pytest.raises(ValueError, match="choose from moodle, gift, qti"):
        export(questions, "csv", tmp_path / "x.csv")
