"""Grading mutants in a warm process: the child side of the audit's pool (``grader.audit.run``).

One process grades many mutants, so TensorFlow is imported once. Each grading execs the mutant's
namespace source in a fresh namespace and runs the checks of the chosen parts in process
(:class:`grader.checking.InProcessSubmission`, as the self-check does) under the hidden seed asked
for, with the process state a fresh sandboxed worker would have (the per-call seed counter, Keras's
layer-name counters). Every probe reply the checks receive is recorded
(:class:`RecordingSubmission`) with the check that asked and its time; the reference's recordings
are kept per (parts, seed) to tell whether a mutant's replies differ from the reference's.

Run as ``python -m grader.audit.grading READ_FD WRITE_FD ASSIGNMENT_FOLDER MEMORY_MB``: tasks come
in and results go out as pickled messages on the two descriptors (both ends are this project's own
processes, and the mutants are the reference's code: trusted).
"""

from __future__ import annotations

import collections
import os
import resource
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from grader.assignment import Assignment, PartKind
from grader.audit.equivalence import Probe, first_difference, request_digest
from grader.checking import InProcessSubmission, ProbeFailure, run_checks
from grader.ingest import IngestedNotebook
from grader.mutation.mutants import Mutant, Reference, load_reference
from grader.secret import using_seed
from grader.wire import FailureKind

#: Part kinds whose probes import TensorFlow: a process that grades them imports it on start.
KERAS_KINDS = (PartKind.MODEL, PartKind.METRIC, PartKind.CALLBACK, PartKind.SCHEDULE)
#: The reference's recordings kept per process, most recent first (a few parts' worth of seeds).
KEPT_RECORDINGS = 24


def _check_asking(checks_dir: str) -> str:
    """The check (``part: first docstring line``, as the runner names it) whose code is running."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_name.startswith("test_") and code.co_filename.startswith(checks_dir):
            function = frame.f_globals.get(code.co_name)
            marks = getattr(function, "pytestmark", [])
            part = next((m.kwargs.get("part") for m in marks if m.name == "check"), "")
            doc = (getattr(function, "__doc__", None) or code.co_name).strip().splitlines()[0]
            return f"{part}: {doc}"
        frame = frame.f_back
    return ""


class RecordingSubmission(InProcessSubmission):
    """An in-process submission that records every probe and its reply; ``load_error`` stands
    for source that raised when exec'd (grading reports it as a load error)."""

    def __init__(
        self,
        namespace: dict[str, Any],
        ingested: IngestedNotebook,
        assignment: Assignment,
        load_error: str = "",
    ) -> None:
        super().__init__(namespace, ingested, assignment)
        self.diagnoser = None  # the audit asks which checks fail, not why: no hints to run
        self.load_error = load_error
        self.probes: list[Probe] = []
        self._checks_dir = str(assignment.checks_dir)

    def _request(self, op, args, arrays, on_message=None):
        if op == "load" and self.load_error:
            raise ProbeFailure(FailureKind.LOAD_ERROR, self.load_error)
        key = request_digest(op, args, arrays)
        name = next((args[k] for k in ("name", "class", "factory") if k in args), "")
        about = f"{op} {name}".strip()
        check = _check_asking(self._checks_dir)
        start = time.perf_counter()
        try:
            reply = super()._request(op, args, arrays, on_message)
        except ProbeFailure as failure:
            got = {"$failure": str(failure.kind), "message": failure.message[:300]}
            self.probes.append(Probe(op, key, about, got, time.perf_counter() - start, check))
            raise
        self.probes.append(Probe(op, key, about, reply, time.perf_counter() - start, check))
        return reply


def _fresh_process_state() -> None:
    """What a new sandboxed worker starts with: Keras's name counters, no open figure."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@dataclass
class Graded:
    """One grading of one program under one hidden seed."""

    checks: list[dict[str, Any]]  # name, part, score, max_score, kind, message, figures
    probes: list[Probe]
    seconds: float


def grade(
    assignment: Assignment,
    ingested: IngestedNotebook,
    parts: list[str],
    seed: int,
    baseline: dict[tuple[int, str], float] | None = None,
    own_part: str = "",
) -> Graded:
    """The checks of ``parts`` on ``ingested`` under hidden seed ``seed``, in this process;
    with ``baseline`` (the reference's score by (seed, check name)), only until the first check
    of ``own_part`` that scores below it."""
    _fresh_process_state()
    start = time.perf_counter()
    namespace: dict[str, Any] = {"__name__": "submission"}
    load_error = ""
    try:
        exec(compile(ingested.source, "submission", "exec"), namespace)
    except Exception as error:  # the program does not load: grading says so in every check
        load_error = f"{type(error).__name__}: {error}"
    submission = RecordingSubmission(namespace, ingested, assignment, load_error)
    stop = None
    if baseline is not None:
        stop = lambda r: r.part == own_part and r.score < baseline.get((seed, r.name), r.max_score)  # noqa: E731
    with using_seed(seed):
        results = run_checks(submission, parts=parts, stop=stop)
    checks = [
        {
            "name": r.name,
            "part": r.part,
            "score": r.score,
            "max_score": r.max_score,
            "kind": str(r.kind),
            "message": r.message[:400],
            "figures": r.figures,
        }
        for r in results
    ]
    return Graded(checks, submission.probes, time.perf_counter() - start)


def lost_points(
    result: dict[str, Any], parts: list[str], baseline: dict[tuple[int, str], float]
) -> list[str]:
    """The checks of ``parts`` that scored below the reference on that seed: a mutant is killed
    when this is not empty on some seed (``baseline``: the reference's score by (seed, check))."""
    return [
        check["name"]
        for check in result.get("checks", [])
        if check["part"] in parts
        and check["score"] < baseline.get((result["seed"], check["name"]), check["max_score"])
    ]


def _slowest(probes: list[Probe]) -> dict[str, tuple[str, float]]:
    """Per check, its slowest probe: (op, seconds)."""
    slowest: dict[str, tuple[str, float]] = {}
    for probe in probes:
        if probe.op != "load" and probe.seconds > slowest.get(probe.check, ("", -1.0))[1]:
            slowest[probe.check] = (probe.op, probe.seconds)
    return slowest


class Grader:
    """A process's grading state: the reference and its recordings."""

    def __init__(self, folder: str) -> None:
        self.reference: Reference = load_reference(folder)
        self.assignment = self.reference.assignment
        self.recordings: collections.OrderedDict[tuple, Graded] = collections.OrderedDict()
        if any(p.kind in KERAS_KINDS for p in self.assignment.parts):
            from grader import worker

            worker._keras()  # warm: TensorFlow imported before the first mutant's clock starts

    def reference_grading(self, parts: list[str], seed: int) -> Graded:
        """The reference's grading on (parts, seed): its verdicts, probes and time (kept)."""
        key = (tuple(parts), seed)
        if key not in self.recordings:
            self.recordings[key] = grade(self.assignment, self.reference.ingested, parts, seed)
            while len(self.recordings) > KEPT_RECORDINGS:
                self.recordings.popitem(last=False)
        self.recordings.move_to_end(key)
        return self.recordings[key]

    def grade_seed(
        self, mutant: Mutant | None, parts: list[str], seed: int, first_kill: bool = False
    ) -> dict[str, Any]:
        """One seed of a task: the verdicts, each check's slowest probe, and (for a mutant) the
        first probe whose reply differs from the reference's. ``first_kill``: a mutant's checks
        stop at the first that scores below the reference's."""
        ingested = self.reference.ingested if mutant is None else self.reference.ingest(mutant)
        baseline = None
        if mutant is not None and first_kill:
            reference = self.reference_grading(parts, seed)
            baseline = {(seed, c["name"]): c["score"] for c in reference.checks}
        graded = grade(self.assignment, ingested, parts, seed, baseline, mutant and mutant.part)
        if mutant is None:
            self.recordings[(tuple(parts), seed)] = graded
            difference = None
        else:
            difference = first_difference(self.reference_grading(parts, seed).probes, graded.probes)
        result = {
            "seed": seed,
            "parts": parts,
            "checks": graded.checks,
            "slowest": _slowest(graded.probes),
            "difference": difference,
            "seconds": graded.seconds,
        }
        # killed on this seed: with first_kill, the task's other seeds are not graded
        result["settled"] = bool(baseline and lost_points(result, [mutant.part], baseline))
        return result


def serve(conn: Connection, folder: str) -> None:
    """Answer tasks until the parent closes the connection: ``("ready",)`` once warm, then per
    task and seed ``("start", task id, seconds)`` when the mutant's clock starts (after the
    reference's recording, with the reference's time on this machine now) and ``("seed", task id,
    result)``, and ``("done", task id)``."""
    grader = Grader(folder)
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        first_kill = task.get("first_kill", False)
        for seed, parts in task["plan"]:
            try:
                seconds = 0.0
                if task["mutant"] is not None:
                    seconds = grader.reference_grading(parts, seed).seconds
                conn.send(("start", task["id"], seconds))
                result = grader.grade_seed(task["mutant"], parts, seed, first_kill)
            except Exception as error:  # the audit's own fault (e.g. ingestion): not a verdict
                result = {"seed": seed, "parts": parts, "error": f"{type(error).__name__}: {error}"}
            conn.send(("seed", task["id"], result))
            if result.get("settled"):
                break  # the verdict is settled: the other seeds would not change it
        conn.send(("done", task["id"]))


def main(argv: list[str]) -> int:
    read_fd, write_fd, folder, memory_mb = int(argv[1]), int(argv[2]), argv[3], int(argv[4])
    if memory_mb > 0:  # a mutant that allocates without end fails here, not on the machine
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn = Connection(read_fd, writable=False)
    out = Connection(write_fd, readable=False)
    status = 0
    try:
        serve(_Duplex(conn, out), folder)
    except BaseException:  # the parent reads the end of this process's log
        traceback.print_exc()
        sys.stderr.flush()
        status = 1
    os._exit(status)  # no atexit handlers of TensorFlow's threads to wait for


class _Duplex:
    """Two one-way connections used as one."""

    def __init__(self, incoming: Connection, outgoing: Connection) -> None:
        self.recv, self.send = incoming.recv, outgoing.send


if __name__ == "__main__":
    sys.exit(main(sys.argv))
