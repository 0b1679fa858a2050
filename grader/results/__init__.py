"""Results: a grading's check results -> the results record -> ``results.json`` and ``report.html``.

What the checking stage judged becomes, here, the two things grading leaves behind: the record
(:mod:`~grader.results.record`: the typed ``results.json``, in the Gradescope schema, with a
:class:`Status` that says whether the score is a verdict, and the one reader of that file),
filled from the checks by :mod:`~grader.results.scoring`, and the learner's self-contained HTML
report (:mod:`~grader.results.report`, templates in ``templates/``) with its pictures
(:mod:`~grader.results.pictures`). Imports flow ``record`` -> ``scoring`` / ``pictures`` ->
``report``; all only read what checking produced.

The names below are imported on first use (PEP 562), so that reading a results.json (the
record) does not import the checking stage or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.results.pictures import (
        Picture,
        array_png,
        curves_picture,
        figure_png,
        pyplot,
        report_pictures,
    )
    from grader.results.record import (
        NOT_RUN,
        REPORT_FILE,
        RESULTS_FILE,
        Fingerprint,
        GradingResult,
        ResultsError,
        ScoredCheck,
        load_results,
        read_results,
        results_json,
        shown_isolation,
        to_gradescope,
    )
    from grader.results.report import ReportMaterial, as_text, png_data_uri, render_report
    from grader.results.scoring import scored
    from grader.status import Status

_WHERE = {
    "grader.results.pictures": (
        "Picture",
        "array_png",
        "curves_picture",
        "figure_png",
        "pyplot",
        "report_pictures",
    ),
    "grader.results.record": (
        "NOT_RUN",
        "REPORT_FILE",
        "RESULTS_FILE",
        "Fingerprint",
        "GradingResult",
        "ResultsError",
        "ScoredCheck",
        "load_results",
        "read_results",
        "results_json",
        "shown_isolation",
        "to_gradescope",
    ),
    "grader.results.report": ("ReportMaterial", "as_text", "png_data_uri", "render_report"),
    "grader.results.scoring": ("scored",),
    "grader.status": ("Status",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "NOT_RUN",
    "REPORT_FILE",
    "RESULTS_FILE",
    "Fingerprint",
    "GradingResult",
    "Picture",
    "ReportMaterial",
    "ResultsError",
    "ScoredCheck",
    "Status",
    "array_png",
    "as_text",
    "curves_picture",
    "figure_png",
    "load_results",
    "png_data_uri",
    "pyplot",
    "read_results",
    "render_report",
    "report_pictures",
    "results_json",
    "scored",
    "shown_isolation",
    "to_gradescope",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
