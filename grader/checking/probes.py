"""How a probe of the sandboxed worker is limited and how its failure reads to the learner.

The submission proxy (``grader.checking.submission``, and the sandboxed one in ``grader.grade``)
turns every probe that produced no data into a :class:`ProbeFailure`; this module says how long each
probe may take (each limit declared once, here), and turns a failure into the learner's message:
their own exception with their cell and line, a hint when a known cause explains it (the
assignment's, e.g. a Keras 2 idiom that Keras 3 rejects, or a generic one),
and never a host path or the grader's own traceback. Kept apart from the proxy so that the report
and the grading stage can share :func:`scrub` and the limits without the probe API.
"""

from __future__ import annotations

import re

from grader import environment
from grader.wire import FailureKind

# The train probe's wall-clock limit, in seconds. Not a budget: training always runs its full step
# budget (the assignment's training check); this limit only ends a grading the machine could
# not finish, with status `timeout` (retried on rerun), never with fewer points. Measured with
# benchmarks/bench_grading.py --no-grading on this 2-core machine (2 threads): the reference's
# 1000 steps take 29-34 s in the bwrap sandbox when it is quiet (~32 steps/s), 84 s beside another
# job's tests (load ~3), and took 206-822 s in an earlier session while several test suites ran at
# once (load 4-15). 3600 s is 4x the worst of those and leaves room for a model at the cost limit
# (the training check's MAX_MFLOPS_PER_EXAMPLE, 2.4x the reference). Override with $GRADER_TRAIN_TIMEOUT
# (seconds). The batch's per-submission timeout (grader.batch) must stay above this one.
TRAIN_TIMEOUT_ENV = environment.TRAIN_TIMEOUT.name
TRAIN_TIMEOUT = 3600.0

# How long each probe may take, in seconds (the worker is restarted after a timeout).
TIMEOUTS = {
    "call": 30.0,
    "metric": 60.0,
    "metric_fit": 120.0,
    "model": 90.0,
    "callback": 120.0,
    "train": TRAIN_TIMEOUT,
}


def probe_timeout(op: str) -> float:
    """The wall-clock limit of one probe; the train probe's can be set with $GRADER_TRAIN_TIMEOUT."""
    given = environment.TRAIN_TIMEOUT.get() if op == "train" else None
    if given:
        try:
            return max(1.0, float(given))
        except ValueError:
            raise ValueError(
                f"${TRAIN_TIMEOUT_ENV} should be a number of seconds, not {given!r}"
            ) from None
    return TIMEOUTS.get(op, 60.0)


class ProbeFailure(Exception):
    """A probe produced no data; ``kind`` says why, as in ``grader.sandbox.ProbeError``."""

    def __init__(self, kind: FailureKind | str, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.kind = FailureKind.of(kind)
        self.message, self.traceback = message, traceback


#: Causes of a learner exception that any assignment's learners meet, by a pattern of its text:
#: (pattern, what to change). An assignment adds its own (its ``known_causes`` hook); they are
#: tried first.
GENERIC_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), hint)
    for pattern, hint in (
        (
            r"NameError: name '\w+' is not defined",
            "this name is not defined when the grader runs your code: either nothing defines it "
            "(a missing import or definition), or top-level code the grader does not run sets "
            "it (only imports, functions, classes, constants and cells tagged `setup` are kept; "
            "the report's problem list names such a line and what to do instead).",
        ),
    )
)
_PATH = re.compile(r"(?<![\w.:/])(?:/[\w.+@-]+){2,}/?")  # not a URL's //host/path
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def scrub(text: str) -> str:
    """No host path (venv, scratch folder, home) and no terminal colour code in a message."""
    text = _ANSI.sub("", text)
    return _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


Causes = tuple[tuple[re.Pattern[str], str], ...]


def known_cause(text: str, causes: Causes = ()) -> str | None:
    """What to change, when a known pattern (the assignment's ``causes``, then the generic ones)
    explains the error text."""
    return next(
        (hint for pattern, hint in (*causes, *GENERIC_CAUSES) if pattern.search(text)), None
    )


def describe_failure(failure: ProbeFailure, doing: str, causes: Causes = ()) -> str:
    """The learner's message for a probe that produced no data.

    A learner exception is shown as itself with the learner's cell and line (the worker keeps only
    their frames) and a hint when a known cause explains it. A reply the grader could not read
    (``protocol``) carries the worker's own traceback: that is never shown.
    """
    message = scrub(failure.message)
    called = re.match(r"calling (\w+)\(\): ", message)
    if called and f"{called.group(1)}(" in doing:  # "while running f(): calling f(): ..."
        message = message[called.end() :]
    what = {
        FailureKind.GRADER_ERROR: (
            f"The grader failed while {doing} ({message}); this is not a finding about your "
            "code: tell your instructor."
        ),
        FailureKind.TIMEOUT: f"Your code took too long while {doing} and was stopped.",
        FailureKind.CRASHED: f"Your code crashed the grader's worker while {doing}: {message}",
        FailureKind.PROTOCOL: (
            f"The grader failed while {doing} ({message}); this is not a finding about your "
            "code: tell your instructor."
            if message.startswith("worker failed on")  # the worker's own code raised
            else f"What your code returned while {doing} could not be read: {message}"
        ),
        FailureKind.LOAD_ERROR: f"Your notebook's code could not be loaded: {message}",
    }.get(failure.kind, f"Your code raised an error while {doing}: {message}")
    shown = (
        failure.traceback
        if failure.kind in (FailureKind.LEARNER_ERROR, FailureKind.LOAD_ERROR)
        else ""
    )
    if shown:
        what += "\n" + scrub(shown).strip()[-1500:]
    hint = known_cause(f"{failure.message}\n{shown}", causes)
    if hint and failure.kind != FailureKind.TIMEOUT:
        what += "\nHint: " + hint
    return what
