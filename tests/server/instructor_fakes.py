"""A grading function for the instructor's tests: results.json with checks (Gradescope's
``tests[]``), so that overrides and the class summary have checks to work on. Module-level and
light, so that the grading subprocess imports it by reference quickly."""

from __future__ import annotations

import json
from pathlib import Path

CHECKS = [  # name, number, score, max_score
    ("create_example", "1.1", 4.0, 4.0),
    ("iou_metric", "2.1", 0.0, 4.0),
    ("training", "3.1", 2.0, 2.0),
]


def checks_grade(path, out_dir, *, sandbox_mode, hidden_seed, assignment=""):
    """6 / 10: the IoU check fails with a hint; the report names its score."""
    tests = [
        {
            "name": name,
            "number": number,
            "score": score,
            "max_score": top,
            "status": "passed" if score == top else "failed",
            "output": "" if score == top else "disjoint boxes should score 0",
        }
        for name, number, score, top in CHECKS
    ]
    total = sum(t["score"] for t in tests)
    document = {"score": total, "max_score": 10.0, "execution_time": 1.5, "tests": tests}
    Path(out_dir, "results.json").write_text(json.dumps(document))
    Path(out_dir, "report.html").write_text(
        f"<!doctype html><html><head><title>r</title></head><body><p>graded report: {total:g}</p>"
        "</body></html>"
    )
    return "graded", total, 10.0
