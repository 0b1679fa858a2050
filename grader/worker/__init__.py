"""The sandboxed worker: loads the learner's source and answers probe requests with data only.

Runs inside the sandbox as an unprivileged user, started by ``grader.sandbox`` from a private copy
that holds only this package, ``grader/wire.py`` and ``grader/environment.py`` (:func:`files`, started by :func:`command`); it
imports nothing else from ``grader``, so the reference solution and the hidden checks are not even
on its path. Every answer is data (JSON + numpy arrays via ``wire``): learner objects never leave
this process, so an ``__eq__`` that always returns True, a patched numpy or a forged exit code
cannot reach the verdict. The self-check runs the same probes in-process (``OPS``, ``STATE``).

Modules, each importing only those before it: ``state`` (limits, trusted builtins, the learner
module), ``tracebacks`` (learner errors as the learner sees them), ``encoding`` (values as data),
``channel`` (the pipes), the probes ``probes_call``, ``probes_keras`` and ``probes_fit``, then
``main`` (the request loop) and ``__main__`` (the entry point in the sandbox). Names starting with
``_`` are private to the package, except ``_describe`` and ``_keras``, re-exported for the
self-check and the benchmark. TensorFlow/Keras and matplotlib are imported lazily, only by the
probes that need them.
"""

from __future__ import annotations

from pathlib import Path

from grader import environment, wire

from .encoding import Encoder, history_floats
from .main import OPS, main, serve
from .probes_call import _describe
from .probes_fit import op_train
from .probes_keras import MAX_CONFIG_JSON
from .state import LEARNER_MODULE, STATE, BadRequest, LearnerFailure, _keras
from .tracebacks import scrub

__all__ = [
    "LEARNER_MODULE",
    "MAX_CONFIG_JSON",
    "OPS",
    "STATE",
    "BadRequest",
    "Encoder",
    "LearnerFailure",
    "_describe",
    "_keras",
    "command",
    "files",
    "history_floats",
    "main",
    "op_train",
    "scrub",
    "serve",
]

_HERE = Path(__file__).resolve().parent

# Run with -P (nothing prepended to sys.path: not the scratch folder that is the working directory)
# and the private copy RT first on the path, as `python -m grader.worker` would run it from RT.
_BOOT = (
    "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "runpy.run_module('grader.worker', run_name='__main__', alter_sys=True)"
)


def files() -> list[tuple[Path, str]]:
    """(source file, destination relative to the private copy) for everything the worker runs:
    this package's modules, the wire and the environment's names. ``grader/__init__.py`` is not among them: the copy's is
    empty, so that nothing else of ``grader`` is imported."""
    modules = sorted(_HERE.glob("*.py"))
    shared = [(Path(wire.__file__).resolve(), "grader/wire.py")]
    shared.append((Path(environment.__file__).resolve(), "grader/environment.py"))
    return shared + [(path, f"grader/worker/{path.name}") for path in modules]


def command(python: str, rt: str, args: list[str]) -> list[str]:
    """The command that starts the worker from its private copy ``rt`` (as :func:`files` laid it
    out), with ``args`` (the request and reply file descriptors)."""
    return [python, "-s", "-P", "-c", _BOOT, rt, *args]
