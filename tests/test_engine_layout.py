"""The engine and the quiz name no assignment, stay small, and import one way.

The engine is every ``.py`` file under ``grader/``, and the quiz every one under ``quiz/``: none
mentions a graded part of any assignment (those shipped in ``assignments/`` and the tiny test
course) or a word of the shipped course, the quiz imports no assignment, every module is under 500
lines and no class is over 200; and no module of either imports itself back through others.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.assignment import MANIFEST, load

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "grader"
QUIZ = ROOT / "quiz"
PACKAGES = (ENGINE, QUIZ)
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


#: The course's former name, any case (``OBJLOC_*`` variables, ``objloc-*`` paths): the engine's
#: names are the engine's. Kept only where a name must outlive the rename, each line by what it
#: holds, with why; a new use anywhere else fails.
OLD_NAME = re.compile(r"objloc", re.IGNORECASE)
OLD_NAME_KEPT = {
    "grader/environment.py": {
        'old="OBJLOC_': "each variable's previous name, read for one release",
        "(``OBJLOC_*``)": "the docstring saying so",
    },
    "grader/secret.py": {
        '"objloc-course"': "the previous release's secret folder, read: a course keeps its seed",
        '_DERIVATION = b"objloc': "the seed derivation's label: another changes every hidden input",
    },
    "grader/submit.py": {'"objloc"  #': "the link the previous release saved, read"},
    "grader/grade.py": {"objloc-hidden-seed:": "the seed's fingerprint earlier results compare"},
    "grader/batch/run.py": {
        "objloc-hidden-seed:": "the seed's fingerprint earlier results compare"
    },
    "grader/authoring/release.py": {'DISTRIBUTION = "objloc-course"': "pyproject's project name"},
    "grader/sandbox/paths.py": {'"objloc_course"': "pyproject's project name (a distribution)"},
    "grader/server/app.py": {'"objloc_session"': "the session cookie: another signs everyone out"},
    # Names a grader of the previous release on the same machine also takes or sweeps: renamed,
    # the two releases would not see each other's slots, scratch folders and cgroups.
    "grader/sandbox/uids.py": {"objloc-grader": "slot locks shared with the previous release"},
    "grader/sandbox/scratch.py": {"objloc-sandbox-": "scratch folders the previous release sweeps"},
    "grader/sandbox/tenancy.py": {"objloc-sandbox-": "the same, described"},
    "grader/sandbox/cgroups.py": {"objloc-slot": "cgroups the previous release sweeps"},
}


def engine_modules() -> list[Path]:
    """The engine's and the quiz's modules."""
    return sorted(path for package in PACKAGES for path in package.rglob("*.py"))


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


def test_the_engine_uses_its_own_names_not_the_courses_former_name() -> None:
    hits = []
    for path in engine_modules():
        kept = OLD_NAME_KEPT.get(str(path.relative_to(ROOT)), {})
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if OLD_NAME.search(line) and not any(text in line for text in kept):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "engine lines with the course's former name:\n" + "\n".join(hits)


def test_the_engine_reads_its_environment_variables_by_the_engines_names() -> None:
    """Every variable is declared in grader.environment with a GRADER_ name; no module of the
    engine spells one (old or new) itself."""
    from grader import environment

    assert all(v.name.startswith("GRADER_") for v in environment.ALL)
    spelled = re.compile(r"[\"'](GRADER|OBJLOC)_[A-Z_]+[\"']")
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in engine_modules()
        if path.name != "environment.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if spelled.search(line)
    ]
    assert not hits, f"environment variables spelled outside grader/environment.py: {hits}"


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


def test_the_quiz_imports_no_assignment() -> None:
    imported = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted(QUIZ.rglob("*.py"))
        for names in imports_of(path)
        for name in names
        if name == "assignments" or name.startswith("assignments.")
    }
    assert not imported, "quiz modules importing an assignment:\n" + "\n".join(sorted(imported))


# --------------------------------------------------------------------------------------------
# No import cycle: every import statement of every module (at the top or inside a function, but
# not under `if TYPE_CHECKING:`) is an edge; importing a.b.c also runs a and a.b.


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            for other in node.orelse:
                yield from _statements(ast.Module(body=[other], type_ignores=[]))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        else:
            yield from _statements(node)


def imports_of(path: Path) -> Iterator[tuple[str, ...]]:
    """What each import of ``path`` names, most specific first: ``import a.b`` names ``a.b``;
    ``from a import b`` names ``a.b`` (when b is a module) or else ``a``."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((alias.name,) for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parent = package[: len(package) - node.level + 1]
            base = ".".join([*parent, *([node.module] if node.module else [])])
        yield from ((f"{base}.{alias.name}", base) for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for package in PACKAGES for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for candidates in imports_of(path):
            imported = next((c for c in candidates if c in modules), None)
            if imported is None:
                continue
            edges.add(imported)  # what the statement names, even this module's own package
            parts = imported.split(".")
            for i in range(1, len(parts)):  # the packages above it run first
                parent = ".".join(parts[:i])
                if not (name + ".").startswith(parent + "."):
                    edges.add(parent)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_engine_or_the_quiz() -> None:
    graph = import_graph()
    assert len(graph) > 120 and "grader.server.app" in graph and "quiz.cli" in graph
    found = cycles(graph)
    assert not found, "modules that import each other (through others):\n" + "\n".join(
        " <-> ".join(component) for component in found
    )


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set(), "c": {"a", "b"}}, []),
    ],
)
def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle(modules, expected) -> None:
    assert cycles(modules) == expected


def test_the_import_walk_sees_function_level_imports_and_skips_type_checking(tmp_path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from grader import grade\n"
        "def f():\n    from grader.server import app\n"
        "from . import sibling\n"
    )
    path = ROOT / "grader" / "server" / "_walk_probe.py"
    names = {name for names in _imports_of_text(source, path) for name in names}
    assert "grader.server.app" in names and "grader.server.sibling" in names
    assert "grader.grade" not in names


def _imports_of_text(source: str, path: Path) -> list[tuple[str, ...]]:
    """imports_of for a module that is not on disk."""
    import unittest.mock

    with unittest.mock.patch.object(Path, "read_text", return_value=source):
        return list(imports_of(path))
