"""Canvas QTI 1.2 export: a zip with `imsmanifest.xml` and one assessment file.

Canvas reads its own `question_type` metadata; the response processing is standard QTI 1.2, so
other QTI 1.2 tools score it too. Options are identified by `<item>-<n>` idents.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from pathlib import Path

from quiz.export.common import number
from quiz.model import Question
from quiz.richtext import text_to_html, to_html

QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
CP_NS = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
ASSESSMENT_ID = "quiz_assessment"

CANVAS_TYPE = {
    "single": "multiple_choice_question",
    "code": "multiple_choice_question",
    "multiple": "multiple_answers_question",
    "truefalse": "true_false_question",
    "numeric": "numerical_question",
    "fill": "short_answer_question",
}


def _mattext(parent: ET.Element, html: str) -> None:
    material = ET.SubElement(parent, "material")
    ET.SubElement(material, "mattext", {"texttype": "text/html"}).text = html


def _meta(parent: ET.Element, fields: dict[str, str]) -> None:
    qm = ET.SubElement(parent, "qtimetadata")
    for label, entry in fields.items():
        f = ET.SubElement(qm, "qtimetadatafield")
        ET.SubElement(f, "fieldlabel").text = label
        ET.SubElement(f, "fieldentry").text = entry


def _feedback(item: ET.Element, ident: str, text: str) -> None:
    fb = ET.SubElement(item, "itemfeedback", {"ident": ident})
    _mattext(ET.SubElement(fb, "flow_mat"), text_to_html(text))


def _condition(rp: ET.Element, cont: str) -> tuple[ET.Element, ET.Element]:
    rc = ET.SubElement(rp, "respcondition", {"continue": cont})
    return rc, ET.SubElement(rc, "conditionvar")


def item_element(q: Question) -> ET.Element:
    """One <item>: presentation, response processing (SCORE 0..100) and feedback."""
    item = ET.Element("item", {"ident": q.id, "title": q.id})
    opt_ids = [f"{q.id}-{i + 1}" for i in range(len(q.options))]
    fields = {"question_type": CANVAS_TYPE[q.type], "points_possible": number(q.points)}
    if q.options:
        fields["original_answer_ids"] = ",".join(opt_ids)
    _meta(ET.SubElement(item, "itemmetadata"), fields)

    pres = ET.SubElement(item, "presentation")
    _mattext(pres, to_html(q.prompt, q.code))
    if q.options:
        card = "Multiple" if q.type == "multiple" else "Single"
        lid = ET.SubElement(pres, "response_lid", {"ident": "response1", "rcardinality": card})
        choice = ET.SubElement(lid, "render_choice", {"shuffle": "Yes" if q.shuffle else "No"})
        for oid, o in zip(opt_ids, q.options, strict=True):
            _mattext(ET.SubElement(choice, "response_label", {"ident": oid}), text_to_html(o.text))
    else:
        rs = ET.SubElement(pres, "response_str", {"ident": "response1", "rcardinality": "Single"})
        fib = ET.SubElement(
            rs, "render_fib", {"fibtype": "Decimal" if q.type == "numeric" else "String"}
        )
        ET.SubElement(fib, "response_label", {"ident": "answer1", "rshuffle": "No"})

    rp = ET.SubElement(item, "resprocessing")
    ET.SubElement(
        ET.SubElement(rp, "outcomes"),
        "decvar",
        {"maxvalue": "100", "minvalue": "0", "varname": "SCORE", "vartype": "Decimal"},
    )
    if q.explanation:
        rc, cv = _condition(rp, "Yes")
        ET.SubElement(cv, "other")
        ET.SubElement(
            rc, "displayfeedback", {"feedbacktype": "Response", "linkrefid": "general_fb"}
        )
    for oid, o in zip(opt_ids, q.options, strict=True):
        if o.feedback:
            rc, cv = _condition(rp, "Yes")
            ET.SubElement(cv, "varequal", {"respident": "response1"}).text = oid
            ET.SubElement(
                rc, "displayfeedback", {"feedbacktype": "Response", "linkrefid": f"{oid}_fb"}
            )
    rc, cv = _condition(rp, "No")
    if q.type == "multiple":
        conj = ET.SubElement(cv, "and")
        for oid, o in zip(opt_ids, q.options, strict=True):
            if o.correct:
                ET.SubElement(conj, "varequal", {"respident": "response1"}).text = oid
            else:
                neg = ET.SubElement(conj, "not")
                ET.SubElement(neg, "varequal", {"respident": "response1"}).text = oid
    elif q.options:
        right = next(oid for oid, o in zip(opt_ids, q.options, strict=True) if o.correct)
        ET.SubElement(cv, "varequal", {"respident": "response1"}).text = right
    elif q.type == "numeric":
        assert q.answer is not None
        either = ET.SubElement(cv, "or")
        ET.SubElement(either, "varequal", {"respident": "response1"}).text = number(q.answer)
        rng = ET.SubElement(either, "and")
        ET.SubElement(rng, "vargte", {"respident": "response1"}).text = number(
            q.answer - q.tolerance
        )
        ET.SubElement(rng, "varlte", {"respident": "response1"}).text = number(
            q.answer + q.tolerance
        )
    else:  # fill
        for accepted in q.accepted:
            ET.SubElement(cv, "varequal", {"respident": "response1", "case": "No"}).text = accepted
    ET.SubElement(rc, "setvar", {"action": "Set", "varname": "SCORE"}).text = "100"

    if q.explanation:
        _feedback(item, "general_fb", q.explanation)
    for oid, o in zip(opt_ids, q.options, strict=True):
        if o.feedback:
            _feedback(item, f"{oid}_fb", o.feedback)
    return item


def assessment_xml(questions: Sequence[Question], title: str) -> bytes:
    root = ET.Element("questestinterop", {"xmlns": QTI_NS})
    assessment = ET.SubElement(root, "assessment", {"ident": ASSESSMENT_ID, "title": title})
    _meta(assessment, {"cc_maxattempts": "1"})
    section = ET.SubElement(assessment, "section", {"ident": "root_section"})
    for q in questions:
        section.append(item_element(q))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def manifest_xml(title: str) -> bytes:
    root = ET.Element("manifest", {"identifier": f"{ASSESSMENT_ID}_manifest", "xmlns": CP_NS})
    meta = ET.SubElement(root, "metadata")
    ET.SubElement(meta, "schema").text = "IMS Content"
    ET.SubElement(meta, "schemaversion").text = "1.1.3"
    ET.SubElement(root, "organizations")
    resources = ET.SubElement(root, "resources")
    res = ET.SubElement(
        resources,
        "resource",
        {
            "identifier": ASSESSMENT_ID,
            "type": "imsqti_xmlv1p2",
            "href": f"{ASSESSMENT_ID}/{ASSESSMENT_ID}.xml",
        },
    )
    ET.SubElement(res, "file", {"href": f"{ASSESSMENT_ID}/{ASSESSMENT_ID}.xml"})
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_qti_zip(
    questions: Sequence[Question], out: Path, title: str = "Quiz", category: str = "quiz"
) -> None:
    """The zip Canvas imports under "QTI .zip file"."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("imsmanifest.xml", manifest_xml(title))
        z.writestr(f"{ASSESSMENT_ID}/{ASSESSMENT_ID}.xml", assessment_xml(questions, title))
