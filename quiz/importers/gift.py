"""GIFT -> bank questions: the inverse of `quiz.export.gift`, plus the common GIFT forms.

Escapes are swapped for private-use placeholders before parsing (as Moodle does), so escaped
control characters never split anything, and restored in the final text.
"""

from __future__ import annotations

import re
from pathlib import Path

from quiz.importers.common import ImportResult, slug, topic_slug
from quiz.model import Option, Question
from quiz.richtext import from_html, html_to_text

_PLACEHOLDER = {c: chr(0xE000 + i) for i, c in enumerate("\\~=#{}:")}
_RESTORE = str.maketrans({v: k for k, v in _PLACEHOLDER.items()})


def _protect(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        c = m.group(1)
        return "\n" if c == "n" else _PLACEHOLDER[c]

    return re.sub(r"\\([\\~=#{}:n])", sub, text)


def _plain(text: str, fmt: str) -> str:
    text = text.strip()
    if fmt == "html":
        return html_to_text(text.translate(_RESTORE))
    return text.translate(_RESTORE)


def _blocks(source: str) -> list[tuple[str, str, dict[str, str]]]:
    """(category topic, question text, metadata) for each question block."""
    out = []
    topic = "imported"
    buf: list[str] = []
    meta: dict[str, str] = {}

    def flush() -> None:
        nonlocal buf, meta
        text = "\n".join(buf).strip()
        if text:
            out.append((topic, text, meta))
        buf, meta = [], {}

    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            m = re.match(r"//\s*quiz:\s*(.*)", stripped)
            if m:
                meta.update(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
            continue
        if stripped.startswith("$CATEGORY:"):
            flush()
            topic = topic_slug(stripped[len("$CATEGORY:") :].strip().rstrip("/").split("/")[-1])
            continue
        if not stripped:
            flush()
            continue
        buf.append(line)
    flush()
    return out


def _split_answers(body: str) -> list[tuple[str, str]]:
    """[(marker, text)] for each '=' or '~' answer in an answer block."""
    parts = re.split(r"([=~])", body)
    out = []
    for i in range(1, len(parts), 2):
        out.append((parts[i], parts[i + 1]))
    return out


def _weight(text: str) -> tuple[float | None, str]:
    m = re.match(r"\s*%(-?[\d.]+)%(.*)", text, re.S)
    return (float(m.group(1)), m.group(2)) if m else (None, text)


def parse_gift(source: str) -> ImportResult:
    """Questions from GIFT text."""
    result = ImportResult()
    for n, (topic, raw, meta) in enumerate(_blocks(source), start=1):
        text = _protect(raw)
        m = re.match(r"\s*::(.*?)::(.*)", text, re.S)
        title, text = (m.group(1), m.group(2)) if m else ("", text)
        fm = re.match(r"\s*\[(html|moodle|plain|markdown)\](.*)", text, re.S)
        fmt, text = (fm.group(1), fm.group(2)) if fm else ("moodle", text)
        qid = slug(title.translate(_RESTORE), f"q{n}")
        if "{" not in text or "}" not in text:
            result.warnings.append(f"{qid}: no answer block (description or unsupported), skipped")
            continue
        start, end = text.index("{"), text.rindex("}")
        before, body, after = text[:start], text[start + 1 : end], text[end + 1 :]
        prompt_html = before + ("_____" + after if after.strip() else "")
        if fmt == "html":
            prompt, code = from_html(prompt_html.translate(_RESTORE))
        else:
            prompt, code = prompt_html.strip().translate(_RESTORE), ""
        explanation = ""
        if "####" in body:
            body, general = body.split("####", 1)
            explanation = _plain(general, fmt)
        points = float(meta.get("points", 1))
        common = {
            "id": qid,
            "topic": topic,
            "prompt": prompt,
            "code": code,
            "explanation": explanation,
            "points": points,
        }
        b = body.strip()
        if re.fullmatch(r"(T|TRUE|F|FALSE)(#.*)?", b, re.S):
            value, *fbs = b.split("#")
            wrong_fb = _plain(fbs[0], fmt) if fbs else ""
            right_fb = _plain(fbs[1], fmt) if len(fbs) > 1 else ""
            truth = value.startswith("T")
            options = (
                Option("True", truth, right_fb if truth else wrong_fb),
                Option("False", not truth, wrong_fb if truth else right_fb),
            )
            result.questions.append(
                Question(type="truefalse", options=options, shuffle=False, **common)
            )
        elif b.startswith("#"):
            answers = [t for mark, t in _split_answers(b[1:]) if mark == "="] or [b[1:]]
            first = answers[0].split("#")[0].strip()
            w, first = _weight(first)
            if w is not None and w < 100:
                result.warnings.append(
                    f"{qid}: partial-credit numeric answers are not supported, using the first"
                )
            if ".." in first:
                lo, hi = (float(x) for x in first.split(".."))
                value, tol = (lo + hi) / 2, (hi - lo) / 2
            else:
                value_s, _, tol_s = first.partition(":")
                value, tol = float(value_s), float(tol_s or 0)
            result.questions.append(Question(type="numeric", answer=value, tolerance=tol, **common))
        elif "->" in b:
            result.warnings.append(f"{qid}: matching questions are not supported, skipped")
        else:
            answers = _split_answers(b)
            if not answers:
                result.warnings.append(f"{qid}: empty answer block (essay?), skipped")
                continue
            parsed = []
            for mark, t in answers:
                w, t = _weight(t)
                ans, _, fb = t.partition("#")
                parsed.append((mark, w, _plain(ans, fmt), _plain(fb, fmt)))
            if all(mark == "=" for mark, *_ in parsed):
                accepted = tuple(a for _, w, a, _ in parsed if w is None or w >= 100)
                result.questions.append(Question(type="fill", accepted=accepted, **common))
                continue
            weighted = any(w is not None for _, w, _, _ in parsed)
            if weighted and not any(mark == "=" for mark, *_ in parsed):
                options = tuple(Option(a, (w or 0) > 0, fb) for _, w, a, fb in parsed)
                result.questions.append(Question(type="multiple", options=options, **common))
            else:
                options = tuple(Option(a, mark == "=", fb) for mark, _, a, fb in parsed)
                kind = "code" if code else "single"
                result.questions.append(Question(type=kind, options=options, **common))
    return result


def read_gift(path: Path) -> ImportResult:
    return parse_gift(Path(path).read_text(encoding="utf-8"))
