"""Build the learner bundle of an assignment: its learner notebook plus the self-check, and nothing
hidden.

Shipped: the learner notebook, the assignment's README, ``requirements.txt``, the files its
manifest lists under ``bundle`` (its given material and public checks), the engine code that runs
the public checks in-process, and the submit client (``grader/submit.py``, standard library
only). Left out: the solution notebook, the reference, the hidden checks, the sandbox, grading
and results stages.

``requirements.txt`` is derived from the project's own metadata, never restated: the
``learner`` optional-dependency group of pyproject.toml names what a learner installs (Jupyter
with its range; the grader's dependencies by name, taking their tested ranges from
``dependencies``). A source checkout reads pyproject.toml; an installed grader (the course server
after ``pip install .``) reads the same from its distribution's metadata.
"""

from __future__ import annotations

import shutil
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from grader.assignment import BUILT_IN, MANIFEST, Assignment, AssignmentError, resolve

PACKAGE = Path(__file__).resolve().parents[1]
PYPROJECT = PACKAGE.parent / "pyproject.toml"
DISTRIBUTION = "objloc-course"
LEARNER_EXTRA = "learner"
REQUIREMENTS = "requirements.txt"

#: Files of the grader package the self-check needs, relative to the package.
SHIPPED = (
    "__init__.py",
    "assignment.py",
    "authoring/__init__.py",
    "authoring/selfcheck.py",
    *(f"checking/{p.name}" for p in sorted((PACKAGE / "checking").glob("*.py"))),
    "checking/pytest.ini",
    "files.py",
    "submit.py",
    *(f"ingest/{p.name}" for p in sorted((PACKAGE / "ingest").glob("*.py"))),
    "wire.py",
    *(f"worker/{p.name}" for p in sorted((PACKAGE / "worker").glob("*.py"))),
)

GENERIC_README = """\
# {title}

Set up once, with Python 3.11 or newer, from a terminal in this folder (in a virtual environment
if you like: `python -m venv .venv`, then `. .venv/bin/activate`):

    python -m pip install -r requirements.txt

Open the notebook and fill in each graded cell:

    jupyter notebook {notebook}

Check your work with the public checks, from a terminal in this folder:

    python -m grader.authoring.selfcheck {notebook}

The grader runs more checks than these.

Submit: save your sign-in link once, then submit the saved notebook and wait for the score:

    python -m grader.submit --link <your sign-in link>
    python -m grader.submit {notebook}

or from a cell of the notebook, after saving it:

    from grader.submit import submit
    submit()
"""


def _requirement(line: str) -> Requirement:
    try:
        return Requirement(line)
    except InvalidRequirement:
        raise AssignmentError(f"the requirement {line!r} is not a package name") from None


def learner_requirements_from(dependencies: list[str], learner: list[str]) -> list[str]:
    """The requirement lines of ``learner`` entries: one with a range is kept; a bare name takes
    its range from ``dependencies`` (an error when it has none there: fail closed)."""
    declared = {canonicalize_name(_requirement(line).name): line.strip() for line in dependencies}
    lines = []
    for entry in learner:
        name = _requirement(entry).name
        if entry.strip() != name:  # a range (or extras, a marker) of its own: kept as written
            lines.append(entry.strip())
        elif canonicalize_name(name) in declared:
            lines.append(declared[canonicalize_name(name)])
        else:
            raise AssignmentError(
                f"the learner requirement {entry!r} has no range: give it one in the "
                f"{LEARNER_EXTRA!r} group or add it to the project's dependencies"
            )
    return lines


def _declared() -> tuple[list[str], list[str]]:
    """(dependencies, the learner group) from pyproject.toml beside the package, else from the
    installed distribution's metadata."""
    if PYPROJECT.is_file():
        project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == DISTRIBUTION:
            groups = project.get("optional-dependencies", {})
            return list(project.get("dependencies", [])), list(groups.get(LEARNER_EXTRA, []))
    try:
        requires = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise AssignmentError(
            f"cannot find {DISTRIBUTION}'s dependencies (no pyproject.toml beside the grader "
            "package and no installed distribution) to write the bundle's requirements.txt"
        ) from None
    base, learner = [], []
    for line in requires:
        spec, marker = line.partition(";")[0].strip(), _requirement(line).marker
        if marker is None:
            base.append(spec)
        elif marker.evaluate({"extra": LEARNER_EXTRA}) and not marker.evaluate({"extra": ""}):
            learner.append(spec)  # in the learner group only
    return base, learner


def learner_requirements() -> list[str]:
    """What a learner installs to work on and self-check the bundle, with the tested ranges."""
    dependencies, learner = _declared()
    if not learner:
        raise AssignmentError(
            f"{DISTRIBUTION} declares no {LEARNER_EXTRA!r} optional dependencies: the bundle's "
            "requirements.txt cannot be written (reinstall the grader: pip install .)"
        )
    return learner_requirements_from(dependencies, learner)


def requirements_text() -> str:
    return (
        "# What this assignment needs, with the ranges it was tested with. Install with:\n"
        "#     python -m pip install -r requirements.txt\n"
        + "\n".join(learner_requirements())
        + "\n"
    )


def learner_readme(assignment: Assignment | str | None = None) -> str:
    """The bundle README: the assignment's (its ``differences`` hook fills ``{differences}``),
    or a short generic one."""
    chosen = resolve(assignment)
    if chosen.bundle_readme is None:
        notebook = chosen.learner.name if chosen.learner else "the notebook"
        return GENERIC_README.format(title=chosen.title, notebook=notebook)
    text = chosen.bundle_readme.read_text(encoding="utf-8")
    differences = chosen.hook("differences")
    return text.replace("{differences}", differences() if differences else "")


def build_release(out: Path, assignment: Assignment | str | None = None) -> list[Path]:
    """Write the bundle into ``out`` (created; existing bundle files are replaced)."""
    chosen = resolve(assignment)
    if chosen.learner is None or not chosen.learner.is_file():
        raise AssignmentError(
            f"assignment {chosen.name!r} has no learner notebook ({chosen.learner}): run "
            "`grader generate` first"
        )
    requirements = requirements_text()  # before writing anything: it may fail
    out.mkdir(parents=True, exist_ok=True)
    written = [out / chosen.learner.name, out / "README.md", out / REQUIREMENTS]
    shutil.copyfile(chosen.learner, written[0])
    written[1].write_text(learner_readme(chosen), encoding="utf-8")
    written[2].write_text(requirements, encoding="utf-8")
    copies = [(PACKAGE / relative, out / "grader" / relative) for relative in SHIPPED]
    # The assignment goes where the self-check looks (grader.assignment.BUILT_IN, beside the
    # grader package), as assignments/<its folder's name>/: its modules import each other
    # relatively, so the package's new name does not matter.
    copies.append((BUILT_IN / "__init__.py", out / BUILT_IN.name / "__init__.py"))
    package_dir = out / BUILT_IN.name / chosen.folder.name
    for relative in dict.fromkeys((MANIFEST, "__init__.py", *chosen.bundle)):
        copies.append((chosen.folder / relative, package_dir / relative))
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written
