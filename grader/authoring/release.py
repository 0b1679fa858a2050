"""Build the learner bundle of an assignment: its learner notebook plus the self-check, and nothing
hidden.

Shipped: the learner notebook, the assignment's README, ``requirements.txt``, the files its
manifest lists under ``bundle`` (its given material and public checks), the engine code that runs
the public checks in-process, the submit client (``grader/submit.py``, standard library only)
and the learner's command (``grader/learner.py``). Left out: the solution notebook, the
reference, the hidden checks, the sandbox, grading and the results stage (but for the filter of
the self-check's output).

The bundle is a small package of its own (``pyproject.toml``): the last line of its
``requirements.txt`` is the bundle's folder, so the one install line a learner runs also installs
the ``grader`` command (``grader check``, ``grader submit``) that the notebook, the README and
every message name. ``python -m grader ...`` runs the same command in the bundle's folder.

``requirements.txt`` is derived from the project's own metadata, never restated: the
``learner`` optional-dependency group of pyproject.toml names what a learner installs (Jupyter
with its range; the grader's dependencies by name, taking their tested ranges from
``dependencies``). An assignment that needs less (or other packages) lists its own in its
manifest's ``requirements``, by the same rule: a bare name takes the project's tested range. A source checkout reads pyproject.toml; an installed grader (the course server
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
BUNDLE_PROJECT = "pyproject.toml"
#: What builds the bundle's package (tested with 1.33): hatchling leaves nothing in the folder it
#: builds (setuptools would leave build/ and an .egg-info beside the learner's notebook).
BUILD_REQUIRES = "hatchling>=1.26,<2"

#: Files of the grader package the self-check needs, relative to the package.
SHIPPED = (
    "__init__.py",
    "assignment.py",
    "authoring/__init__.py",
    "authoring/selfcheck.py",
    "environment.py",
    *(f"checking/{p.name}" for p in sorted((PACKAGE / "checking").glob("*.py"))),
    "checking/pytest.ini",
    "files.py",
    "learner.py",
    "parts.py",
    "results/learner_output.py",  # the self-check's output filter (the package's __init__ is not)
    "submit.py",
    "validation.py",
    *(f"ingest/{p.name}" for p in sorted((PACKAGE / "ingest").glob("*.py"))),
    "wire.py",
    *(f"worker/{p.name}" for p in sorted((PACKAGE / "worker").glob("*.py"))),
)

GENERIC_README = """\
# {title}

Set up once, with Python 3.11 or newer, from a terminal in this folder, in a virtual environment
(`python -m venv .venv`, then `. .venv/bin/activate`; on Windows `.venv\\Scripts\\activate`):

    python -m pip install -r requirements.txt

This also installs the `grader` command. Open the notebook and fill in each graded cell:

    jupyter notebook {notebook}

Check your work with the public checks, from a terminal in this folder:

    grader check {notebook}

The grader runs more checks than these.

Submit: save your sign-in link once, then submit the saved notebook and wait for the score:

    grader submit --link <your sign-in link>
    grader submit {notebook}

or from a cell of the notebook, after saving it:

    from grader.submit import submit
    submit()

If your terminal says `grader: command not found`, activate the virtual environment first (or
type `python -m grader` instead of `grader`).
"""

#: The bundle's grader/__main__.py: ``python -m grader`` is the learner's command there.
BUNDLE_MAIN = '''"""``python -m grader`` in the learner bundle: the learner's command (grader check, submit)."""

from grader.learner import main

raise SystemExit(main())
'''


def _requirement(line: str) -> Requirement:
    try:
        return Requirement(line)
    except InvalidRequirement:
        raise AssignmentError(f"the requirement {line!r} is not a package name") from None


def _name(line: str) -> str:
    return _requirement(line).name


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


def learner_requirements(assignment: Assignment | None = None) -> list[str]:
    """What a learner installs to work on and self-check the bundle, with the tested ranges: the
    assignment's own ``requirements`` when its manifest lists them, else the learner group."""
    dependencies, learner = _declared()
    if assignment is not None and assignment.requirements is not None:
        # a bare name's range: the project's dependencies, else its learner group's entry
        ranged = [*dependencies, *(line for line in learner if line.strip() != _name(line))]
        return learner_requirements_from(ranged, list(assignment.requirements))
    if not learner:
        raise AssignmentError(
            f"{DISTRIBUTION} declares no {LEARNER_EXTRA!r} optional dependencies: the bundle's "
            "requirements.txt cannot be written (reinstall the grader: pip install .)"
        )
    return learner_requirements_from(dependencies, learner)


def requirements_text(requirements: list[str] | None = None) -> str:
    lines = learner_requirements() if requirements is None else requirements
    return (
        "# What this assignment needs, with the ranges it was tested with. Install with:\n"
        "#     python -m pip install -r requirements.txt\n"
        + "\n".join(lines)
        + "\n# This folder: the `grader` command (grader check, grader submit). Run pip from here.\n"
        + "./\n"
    )


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bundle_project(chosen: Assignment, requirements: list[str]) -> str:
    """The bundle's pyproject.toml: its packages and the ``grader`` command, the same
    requirements as requirements.txt (so that ``pip install .`` alone works too)."""
    from grader import __version__

    name = canonicalize_name(f"{chosen.name}-bundle")
    dependencies = "".join(f"    {_toml(line)},\n" for line in requirements)
    return (
        "# The learner bundle as a package: installing it (the last line of requirements.txt)\n"
        "# gives the `grader` command: grader check, grader submit.\n"
        "[build-system]\n"
        f"requires = [{_toml(BUILD_REQUIRES)}]\n"
        'build-backend = "hatchling.build"\n\n'
        "[project]\n"
        f"name = {_toml(name)}\n"
        f"version = {_toml(__version__)}\n"
        f"description = {_toml(chosen.title + ': the notebook, its self-check and submit command')}\n"
        'requires-python = ">=3.11"\n'
        f"dependencies = [\n{dependencies}]\n\n"
        "[project.scripts]\n"
        'grader = "grader.learner:main"\n\n'
        "[tool.hatch.build.targets.wheel]\n"
        'packages = ["grader", "assignments"]\n'
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
    requirements = learner_requirements(chosen)  # before writing anything: it may fail
    out.mkdir(parents=True, exist_ok=True)
    written = [out / chosen.learner.name, out / "README.md", out / REQUIREMENTS]
    written += [out / BUNDLE_PROJECT, out / "grader" / "__main__.py"]
    shutil.copyfile(chosen.learner, written[0])
    written[1].write_text(learner_readme(chosen), encoding="utf-8")
    written[2].write_text(requirements_text(requirements), encoding="utf-8")
    written[3].write_text(bundle_project(chosen, requirements), encoding="utf-8")
    written[4].parent.mkdir(parents=True, exist_ok=True)
    written[4].write_text(BUNDLE_MAIN, encoding="utf-8")
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
