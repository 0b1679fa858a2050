"""The worker process's own state: the loaded learner module, trusted builtins, seeding, Keras.

Everything the probes share lives here, below every other worker module: the limits of what a
reply may hold, references to builtins taken before learner code runs (learners may patch them)
and :func:`_restore` that puts them back, the two failures a probe can end with, and the
:data:`STATE` of this process (the learner module, its file name, the TensorFlow thread count,
the per-call seed counter), and :func:`_named`, which reads the name of a learner definition from a
request: the worker knows no course's names, the trusted side sends them. Only the standard library and numpy are imported here; TensorFlow and
Keras are imported on first use by :func:`_keras`.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import random
import sys
import types
from typing import Any

import numpy as np

from grader import environment

LEARNER_MODULE = "submission"
MAX_TRACEBACK = 4000
MAX_REPR = 200
MAX_STR = 100_000
MAX_DEPTH = 24
MAX_NODES = 100_000

# Trusted references to builtins taken before learner code runs (learners may patch builtins).
_isinstance = builtins.isinstance
_type = builtins.type
_len = builtins.len
_BUILTINS = dict(builtins.__dict__)
_JSON = (json.dumps, json.loads)


def _restore() -> None:
    """Undo learner patches of builtins and json before the worker speaks on the wire.

    This is hygiene, not the security boundary: learner code owns this process and could forge
    any reply, but a reply is only data that the trusted side judges against its own reference.
    """
    for key, value in _BUILTINS.items():
        if builtins.__dict__.get(key) is not value:
            builtins.__dict__[key] = value
    json.dumps, json.loads = _JSON


class BadRequest(Exception):
    """The request itself is malformed (a trusted-side bug, not the learner's fault)."""


class LearnerFailure(Exception):
    """Learner code raised; carries the trimmed traceback text."""

    def __init__(self, kind: str, message: str, tb: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.tb = tb


class State:
    def __init__(self) -> None:
        self.module: types.ModuleType | None = None
        self.filename = "<learner>"
        self.threads = int(environment.THREADS.get() or 0)
        self.calls = 0  # calls seeded so far: each gets its own global seed


STATE = State()


def _scratch() -> str:
    return os.environ.get("TMPDIR") or "/tmp"


def _keras() -> Any:
    """Import TensorFlow + Keras on first use, with the thread settings applied first."""
    import tensorflow as tf

    if STATE.threads:
        with contextlib.suppress(RuntimeError):  # already initialised by learner imports
            tf.config.threading.set_intra_op_parallelism_threads(STATE.threads)
            tf.config.threading.set_inter_op_parallelism_threads(STATE.threads)
    import keras

    return keras


def _seed_everything(seed: int | None) -> None:
    """Seed the global generators (random, np.random, Keras) with a value that is deterministic
    but distinct for every call, never the call's own ``rng`` seed: code that draws from
    ``np.random`` instead of its ``rng`` argument then gives different results for the same
    seed, which the determinism checks see, and grading stays reproducible."""
    STATE.calls += 1
    key = [STATE.calls] + ([abs(int(seed))] if _isinstance(seed, int) else [])
    mixed = int(np.random.SeedSequence(key).generate_state(1)[0])
    random.seed(mixed)
    np.random.seed(mixed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(mixed)


def _graded(name: str) -> Any:
    if STATE.module is None:
        raise BadRequest("no learner code loaded")
    if not _isinstance(name, str) or name not in STATE.module.__dict__:
        raise LearnerFailure("learner_error", f"`{name}` is not defined", "")
    return STATE.module.__dict__[name]


def _named(args: dict, key: str) -> str:
    """The name of a learner definition that the request gives under ``key`` (a class or a
    function): the trusted side knows the course's names, the worker knows none."""
    name = args.get(key)
    if not _isinstance(name, str) or not name:
        raise BadRequest(f"the request needs {key!r}: the name of a learner definition")
    return name
