"""The engine names no assignment and stays small (issue 11's "done when").

The engine is every ``.py`` file under ``grader/``: none mentions a graded part of any assignment
(those shipped in ``assignments/`` and the tiny test course) or a word of the shipped course, every
module is under 500 lines and no class is over 200.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from grader.assignment import MANIFEST, load

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "grader"
ASSIGNMENT_FOLDERS = [
    *sorted(p.parent for p in (ROOT / "assignments").glob(f"*/{MANIFEST}")),
    ROOT / "tests" / "fixtures" / "tiny_course",
]
MAX_MODULE_LINES = 500  # a module has fewer
MAX_CLASS_LINES = 200  # a class has at most

#: The shipped course's words, case-insensitive. "bounding" is the course's bounding box; the
#: kernel's capability "bounding set" (the sandbox drops it) is not a course word.
COURSE_WORDS = re.compile(
    r"emoji|object_localization|object localization|class_out|box_out|bounding(?![ _-]set)",
    re.IGNORECASE,
)


def engine_modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def part_names() -> set[str]:
    names = {name for folder in ASSIGNMENT_FOLDERS for name in load(folder).part_names}
    assert {"normalise_box"} < names and len(names) > 2  # the guard sees both courses
    return names


def test_the_engine_names_no_part_and_no_course_word() -> None:
    parts = re.compile(r"\b(" + "|".join(map(re.escape, sorted(part_names()))) + r")\b")
    hits = []
    for path in engine_modules():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found = [m.group(0) for m in (*parts.finditer(line), *COURSE_WORDS.finditer(line))]
            if found:
                hits.append(f"{path.relative_to(ROOT)}:{number}: {', '.join(found)}")
    assert not hits, "engine lines naming an assignment:\n" + "\n".join(hits)


def test_every_engine_module_is_under_500_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in engine_modules()
    }
    assert len(sizes) > 20
    too_long = {name: n for name, n in sizes.items() if n >= MAX_MODULE_LINES}
    assert not too_long, f"modules of {MAX_MODULE_LINES} lines or more: {too_long}"


def test_no_engine_class_is_over_200_lines() -> None:
    classes = {}
    for path in engine_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1
                classes[f"{path.relative_to(ROOT)}:{node.name}"] = size
    assert classes  # the walk found the engine's classes
    too_long = {name: n for name, n in classes.items() if n > MAX_CLASS_LINES}
    assert not too_long, f"classes over {MAX_CLASS_LINES} lines: {too_long}"
