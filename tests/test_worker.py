"""The sandboxed worker package stays self-contained: what its private copy holds is all it imports."""

import ast
import sys
from pathlib import Path

import pytest

from grader import worker
from tests.objloc import GRADED_PARTS

ALLOWED = {"numpy", "tensorflow", "keras", "matplotlib"}
SHARED = {"grader/wire.py", "grader/environment.py"}  # the grader's modules the copy holds


def test_the_worker_imports_only_the_stdlib_its_libraries_the_wire_and_the_names() -> None:
    copied = {dest for _, dest in worker.files()}
    for source, dest in worker.files():
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:  # within the package: copied
                module = node.module or "__init__"
                assert f"grader/worker/{module.replace('.', '/')}.py" in copied, (dest, module)
                continue
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = (
                    top in sys.stdlib_module_names
                    or top in ALLOWED
                    or name in ("grader.wire", "grader.environment")
                )
                assert ok, (dest, name)


def test_the_copy_holds_the_package_the_wire_and_the_environment_names_only() -> None:
    dests = [dest for _, dest in worker.files()]
    assert "grader/wire.py" in dests and "grader/worker/__main__.py" in dests
    assert set(dests) >= SHARED
    assert all(d in SHARED or d.startswith("grader/worker/") for d in dests)
    assert all(Path(src).is_file() and Path(src).suffix == ".py" for src, _ in worker.files())
    assert worker.LEARNER_MODULE.split(".")[0] not in {"grader", *sys.stdlib_module_names}


@pytest.mark.parametrize("word", [*GRADED_PARTS, "class_out", "box_out", "emoji", "144"])
def test_the_worker_names_nothing_of_the_course(word: str) -> None:
    """Every course name (graded parts, model outputs, image size) comes in the request from the
    trusted side: the worker's sources hold none of them, not even in a docstring."""
    for source, dest in worker.files():
        if dest.startswith("grader/worker/"):
            text = source.read_text()
            assert word not in (text.lower() if word.islower() else text), (dest, word)
