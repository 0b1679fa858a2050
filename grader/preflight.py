"""The isolation check before grading starts: one for ``grader grade`` and ``grader serve``.

Why: grading must fail closed, and say so before any notebook is read. The rung that would run
is probed here once (``grader.sandbox.preflight``) and named; where the isolation asked for (or,
for ``auto``, any) cannot run, the caller refuses to start with the message returned. A rung
with a warning (``none``) is said loudly. With a Dask scheduler each worker checks on its own
machine, so nothing is probed here.
"""

from __future__ import annotations

import sys

from grader import sandbox
from grader.sandbox.isolation import RUNGS


def refusal(mode: str, prog: str, *, scheduler: str | None = None) -> str | None:
    """None when grading may go on (the isolation chosen, or the warning, is printed), else the
    message to print before exiting 2."""
    rung = RUNGS.get(mode)
    if rung is not None and rung.warning:
        print(f"{prog}: {rung.warning}", file=sys.stderr, flush=True)
        return None
    if scheduler:
        return None
    try:
        isolation, note = sandbox.preflight(mode)
    except sandbox.SandboxUnavailable as error:
        return str(error)
    print(f"{prog}: isolation: {isolation}" + (f" ({note})" if note else ""), flush=True)
    return None
