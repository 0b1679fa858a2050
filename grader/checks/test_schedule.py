"""lr_schedule: a table of (epoch, lr) cases, the floor included."""

import pytest

from grader.check_api import Incorrect, PartialCredit, check
from grader.checks.helpers import as_float

CASES = [  # (epoch, incoming lr, expected): hold 3 epochs, then halve, never below 1e-5
    (0, 1e-3, 1e-3),
    (2, 1e-3, 1e-3),
    (3, 1e-3, 5e-4),
    (4, 5e-4, 2.5e-4),
    (6, 4e-4, 2e-4),
    (8, 1.5e-5, 1e-5),
    (9, 1e-5, 1e-5),
    (20, 3e-6, 1e-5),
]


@check("lr_schedule", 5, public=True)
def test_lr_schedule_table(submission):
    """hold for 3 epochs, then halve each epoch, never below 1e-5"""
    wrong = []
    for epoch, lr, expected in CASES:
        got = as_float(submission.call("lr_schedule", epoch, lr), f"lr_schedule({epoch}, {lr})")
        if got != pytest.approx(expected, rel=1e-4):
            wrong.append(f"lr_schedule({epoch}, {lr:g}) returned {got:g}, expected {expected:g}")
    if not wrong:
        return
    hint = ""
    if any(case[2] == 1e-5 and f"{case[1]:g})" in w for w in wrong for case in CASES[-3:]):
        hint = " Hint: the floor is missing: return max(new_lr, MIN_LR)."
    message = (
        "; ".join(wrong[:3])
        + (f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else "")
        + "."
        + hint
    )
    right = len(CASES) - len(wrong)
    if right == 0:
        raise Incorrect(message)
    raise PartialCredit(right / len(CASES), message)
