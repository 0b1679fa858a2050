"""Checking: an assignment's checks judge a learner's submission, in the trusted process.

An assignment's checks (pytest functions under its ``checks/``, written in the vocabulary of
:mod:`~grader.checking.check_api`) talk to a :class:`Submission`: an interface whose probes either
run in the learner's own process (:class:`InProcessSubmission`, the self-check) or go to the
sandboxed worker (``grader.grade``). :mod:`~grader.checking.probes` limits each probe and turns a
failed one into the learner's message; :mod:`~grader.checking.model_audit` rebuilds the learner's
model from its config to judge its structure and cost; :func:`run_checks` runs the checks and
returns one :class:`CheckResult` per check, which the results stage scores; the checks also fill
the submission's :class:`Artifacts` for the report; :mod:`~grader.checking.diagnosis` runs the
known mistakes of the reference when a check fails, so that a hint names only an observed cause;
:mod:`~grader.checking.training` is a training check's budgeted training and bands.
Imports flow ``artifacts``/``check_api``/``model_audit``/``probes``/``diagnosis`` -> ``contract``,
``call_probes``, ``metric_probes``, ``keras_probes``, ``training`` -> ``submission`` -> ``in_process``,
``runner``; the
assignment (``grader.assignment``) says which parts there are and provides the hooks.
"""

from grader.checking.artifacts import Artifacts, HabitsFound, TrainingRun
from grader.checking.check_api import (
    CheckOutcome,
    Incorrect,
    LearnerError,
    NotAttempted,
    OutcomeKind,
    PartialCredit,
    check,
    short,
    where_it_returns,
)
from grader.checking.contract import PartContract
from grader.checking.diagnosis import Diagnoser, KnownMistake, Model, agree, load_catalogue
from grader.checking.in_process import InProcessSubmission
from grader.checking.keras_probes import KerasProbes, probe_images
from grader.checking.model_audit import ModelAudit, ModelAuditError, audit_config, trusted_keras
from grader.checking.probes import (
    TIMEOUTS,
    TRAIN_TIMEOUT,
    TRAIN_TIMEOUT_ENV,
    ProbeFailure,
    describe_failure,
    known_cause,
    probe_timeout,
    scrub,
)
from grader.checking.runner import CheckResult, run_checks
from grader.checking.submission import Submission

__all__ = [
    "TIMEOUTS",
    "TRAIN_TIMEOUT",
    "TRAIN_TIMEOUT_ENV",
    "Artifacts",
    "CheckOutcome",
    "CheckResult",
    "Diagnoser",
    "HabitsFound",
    "InProcessSubmission",
    "Incorrect",
    "KerasProbes",
    "KnownMistake",
    "LearnerError",
    "Model",
    "ModelAudit",
    "ModelAuditError",
    "NotAttempted",
    "OutcomeKind",
    "PartContract",
    "PartialCredit",
    "ProbeFailure",
    "Submission",
    "TrainingRun",
    "agree",
    "audit_config",
    "check",
    "describe_failure",
    "known_cause",
    "load_catalogue",
    "probe_images",
    "probe_timeout",
    "run_checks",
    "scrub",
    "short",
    "trusted_keras",
    "where_it_returns",
]
