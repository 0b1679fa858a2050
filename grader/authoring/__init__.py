"""Authoring: what an instructor makes for learners from the solution notebook.

:mod:`~grader.authoring.assign` cuts the solution regions out of the solution notebook to make the
learner notebook; :mod:`~grader.authoring.release` builds the learner bundle (that notebook, the
given material, the public checks and the code that runs them); :mod:`~grader.authoring.selfcheck`
is the learner's self-check, which that bundle ships. Imports flow ``assign`` -> ``release``;
``selfcheck`` needs only the checking stage.

The names below are re-exported lazily (on first use), because the bundle ships this package with
``selfcheck.py`` alone: importing ``grader.authoring.selfcheck`` there must not import ``assign``
or ``release``, which are not shipped (``assign`` knows the solution markers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.authoring.assign import (
        AssignError,
        generate,
        make_learner_notebook,
    )
    from grader.authoring.release import build_release, learner_readme
    from grader.authoring.selfcheck import check_namespace, check_notebook, format_summary

#: Each re-exported name -> the module of this package that defines it.
_EXPORTS = {
    "AssignError": "assign",
    "generate": "assign",
    "make_learner_notebook": "assign",
    "build_release": "release",
    "learner_readme": "release",
    "check_namespace": "selfcheck",
    "check_notebook": "selfcheck",
    "format_summary": "selfcheck",
}

__all__ = [
    "AssignError",
    "build_release",
    "check_namespace",
    "check_notebook",
    "format_summary",
    "generate",
    "learner_readme",
    "make_learner_notebook",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
