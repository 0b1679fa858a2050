"""Build the learner bundle of an assignment: its learner notebook plus the self-check, and nothing
hidden.

Shipped: the learner notebook, the assignment's README and the files its manifest lists under
``bundle`` (its given material and public checks), and the engine code that runs the public checks
in-process. Left out: the solution notebook, the reference, the hidden checks, the sandbox, grading
and results stages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.assignment import BUILT_IN, MANIFEST, Assignment, AssignmentError, resolve

PACKAGE = Path(__file__).resolve().parents[1]

#: Files of the grader package the self-check needs, relative to the package.
SHIPPED = (
    "__init__.py",
    "assignment.py",
    "authoring/__init__.py",
    "authoring/selfcheck.py",
    *(f"checking/{p.name}" for p in sorted((PACKAGE / "checking").glob("*.py"))),
    "checking/pytest.ini",
    "files.py",
    *(f"ingest/{p.name}" for p in sorted((PACKAGE / "ingest").glob("*.py"))),
    "wire.py",
    *(f"worker/{p.name}" for p in sorted((PACKAGE / "worker").glob("*.py"))),
)

GENERIC_README = """\
# {title}

Open `{notebook}` in Jupyter and fill in each graded cell.

Check your work with the public checks, from a terminal in this folder:

    python -m grader.authoring.selfcheck {notebook}

The grader runs more checks than these.
"""


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
    out.mkdir(parents=True, exist_ok=True)
    written = [out / chosen.learner.name, out / "README.md"]
    shutil.copyfile(chosen.learner, written[0])
    written[1].write_text(learner_readme(chosen), encoding="utf-8")
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
