"""Results: a submission's check results -> ``results.json`` (scoring) and ``report.html`` (report).

What the checking stage judged becomes, here, the two things grading leaves behind: the Gradescope
``results.json`` with a :class:`Status` that says whether the score is a verdict
(:mod:`~grader.results.scoring`), and the learner's self-contained HTML report
(:mod:`~grader.results.report`, templates in ``templates/``) with its pictures
(:mod:`~grader.results.pictures`). Imports flow ``pictures`` -> ``scoring`` -> ``report``; all
only read what checking produced.
"""

from grader.results.pictures import (
    Picture,
    array_png,
    curves_picture,
    figure_png,
    pyplot,
    report_pictures,
)
from grader.results.report import as_text, png_data_uri, render_report, write_report
from grader.results.scoring import (
    NOT_RUN,
    GradingResult,
    Status,
    result_as_dict,
    shown_isolation,
    to_gradescope,
    write_results,
)

__all__ = [
    "NOT_RUN",
    "GradingResult",
    "Picture",
    "Status",
    "array_png",
    "as_text",
    "curves_picture",
    "figure_png",
    "png_data_uri",
    "pyplot",
    "render_report",
    "report_pictures",
    "result_as_dict",
    "shown_isolation",
    "to_gradescope",
    "write_report",
    "write_results",
]
