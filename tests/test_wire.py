"""The bounded wire: what the worker sends is capped per message and per exchange, and read only
where the protocol expects it, so a worker that floods the pipe cannot grow the trusted process.

Unit cases drive ``grader.wire`` with in-memory byte streams (counting what the reader consumed);
the end-to-end cases are hostile submissions that write straight to the worker's reply pipe, graded
by a real ``Sandbox`` in a subprocess whose peak RSS is measured."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from grader import wire
from grader.sandbox import Limits, ProbeError, Sandbox, bwrap_status

ROOT = Path(__file__).resolve().parents[1]
BWRAP_OK, BWRAP_WHY = bwrap_status()
MODES = [
    pytest.param("bwrap", marks=pytest.mark.skipif(not BWRAP_OK, reason=BWRAP_WHY or "ok")),
    "none",
]
# what the probes need, measured from the checks: the training probe streams 1000 batches of
# 16x144x144x3 uint8 from the trusted side; the largest reply is a sampled float64 batch
TRAINING_STREAM_BYTES = 1000 * 16 * 144 * 144 * 3
LARGEST_REPLY_BYTES = 16 * 144 * 144 * 3 * 8


class Stream:
    """``read_exact`` over bytes that records how much was taken off the "pipe"."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.data = b"".join(chunks)
        self.pos = 0

    def __call__(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise wire.WireEOF("end of stream")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _header_size(chunks: list[bytes]) -> int:
    return len(chunks[0]) + len(chunks[1])


def test_the_default_caps_are_far_above_what_the_probes_need() -> None:
    from grader.job import grading_limits

    caps = wire.DEFAULT_CAPS
    with Sandbox("", limits=grading_limits(4096)) as batch_grading:
        assert batch_grading.caps.message_bytes == caps.message_bytes
        assert batch_grading.caps.exchange_bytes == caps.exchange_bytes
    assert caps.message_bytes >= 4 * LARGEST_REPLY_BYTES
    assert caps.exchange_bytes >= caps.message_bytes
    # the trusted side's own stream is not the worker's to inflate: it is not metered, and it is
    # far above any exchange cap, so metering it would break training
    assert 4 * caps.exchange_bytes < TRAINING_STREAM_BYTES
    batch = np.zeros((16, 144, 144, 3), np.float64)
    chunks = wire.encode_message({"kind": "reply", "result": {"$array": "x"}}, {"x": batch})
    header, arrays = wire.read_message(
        Stream(chunks), caps, wire.expected_from_worker("call", False)
    )
    assert header["kind"] == "reply" and arrays["x"].shape == batch.shape


def test_a_note_with_arrays_while_loading_is_refused_before_its_arrays_are_read() -> None:
    big = np.zeros(1 << 20, np.uint8)
    chunks = wire.encode_message({"kind": "note"}, {"a": big})
    stream = Stream(chunks)
    with pytest.raises(wire.WireError, match="unexpected 'note'"):
        wire.read_message(stream, wire.DEFAULT_CAPS, wire.expected_from_worker("load", False))
    assert stream.pos == _header_size(chunks)  # the megabyte stayed in the pipe


@pytest.mark.parametrize(
    ("op", "talks_back", "kind", "with_arrays", "accepted"),
    [
        ("load", False, "reply", False, True),
        ("load", False, "reply", True, False),  # the load reply is names only
        ("load", True, "ask", False, False),  # nothing but reply/error while loading
        ("load", False, "error", False, True),
        ("call", False, "reply", True, True),
        ("call", False, "error", True, False),
        ("call", False, "note", False, False),  # nobody listens: not expected
        ("call", False, "ask", False, False),
        ("train", True, "ask", False, True),
        ("train", True, "ask", True, False),  # asks and notes are headers only
        ("train", True, "note", False, True),
        ("train", True, "note", True, False),
        ("train", True, "answer", False, False),  # the worker never answers
    ],
)
def test_messages_are_accepted_only_where_the_protocol_expects_them(
    op: str, talks_back: bool, kind: str, with_arrays: bool, accepted: bool
) -> None:
    arrays = {"a": np.arange(4)} if with_arrays else None
    stream = Stream(wire.encode_message({"kind": kind}, arrays))
    expected = wire.expected_from_worker(op, talks_back)
    if accepted:
        assert wire.read_message(stream, wire.DEFAULT_CAPS, expected)[0]["kind"] == kind
    else:
        with pytest.raises(wire.WireError):
            wire.read_message(stream, wire.DEFAULT_CAPS, expected)


def test_a_message_over_the_cap_is_refused_from_its_header() -> None:
    caps = wire.Caps.sized(1 << 20)
    chunks = wire.encode_message(
        {"kind": "reply"}, {"a": np.zeros(600_000, np.uint8), "b": np.zeros(600_000, np.uint8)}
    )
    stream = Stream(chunks)
    with pytest.raises(wire.WireError, match=r"message of .* exceeds"):
        wire.read_message(stream, caps, wire.expected_from_worker("call", False))
    assert stream.pos == _header_size(chunks)
    with pytest.raises(wire.WireError, match=r"message of .* exceeds"):  # and never sent
        wire.encode_message({"kind": "reply"}, {"a": np.zeros(1 << 20, np.uint8)}, caps)


def test_the_meter_bounds_an_exchange_before_reading() -> None:
    note = wire.encode_message({"kind": "note", "pad": "x" * 1000})
    size = sum(map(len, note))
    stream = Stream(note * 10)
    meter = wire.Meter(stream, limit=3 * size + 10, what="train")
    expected = wire.expected_from_worker("train", True)
    for _ in range(3):
        wire.read_message(meter, wire.DEFAULT_CAPS, expected)
    with pytest.raises(wire.WireError, match="train exceeds"):
        wire.read_message(meter, wire.DEFAULT_CAPS, expected)
    assert stream.pos == 3 * size + 4  # the fourth message's body was never read


# --------------------------------------------------------------------------------------------
# End to end: hostile submissions that write to the worker's pipes (argv: ... RFD WFD)

_PIPES = """
import json, os, struct, sys
import numpy as np
from grader import wire  # the worker's private copy

_R, _W = int(sys.argv[-2]), int(sys.argv[-1])
_LOOSE = wire.Caps(array_bytes=1 << 30, message_bytes=1 << 34)


def _send(header, arrays=None):
    wire.write_fd(_W, wire.encode_message(header, arrays, _LOOSE))


def _flood(header, count, megabytes=256):
    # one message with `count` arrays of `megabytes` MB, streamed from a single buffer
    (blob,) = wire.encode_message({}, {"a": np.zeros(megabytes << 20, np.uint8)}, _LOOSE)[3:]
    head = json.dumps({**header, "$arrays": [[f"a{i}", len(blob)] for i in range(count)]})
    wire.write_fd(_W, [struct.pack(">I", len(head)), head.encode()])
    for _ in range(count):
        wire.write_fd(_W, [struct.pack(">Q", len(blob)), blob])
"""

FLOODS = {
    # 10 notes of a 256 MB array each, while the code loads
    "notes_while_loading": _PIPES
    + """
for _i in range(10):
    _flood({"kind": "note", "i": _i}, 1)
""",
    # a reply to a call that declares 10 arrays of 256 MB
    "huge_reply": _PIPES
    + """
def create_example():
    _flood({"kind": "reply", "ok": True, "result": None}, 10)
    return None
""",
}

_MEASURE = textwrap.dedent(
    """
    import json, sys
    from grader.sandbox import ProbeError, Sandbox
    source, mode, op = sys.argv[1], sys.argv[2], sys.argv[3]
    out = {}
    with Sandbox(open(source).read(), mode=mode) as sandbox:
        try:
            if op == "load":
                sandbox.start(timeout=120)
            else:
                sandbox.start(timeout=120)
                sandbox.request("call", {"name": "create_example"}, timeout=120)
            out["kind"] = "no error"
        except ProbeError as error:
            out |= {"kind": error.kind, "message": error.message}
    # VmHWM is this process's own peak; ru_maxrss would carry over the parent's
    # peak across exec (a pytest process that has loaded TensorFlow).
    status = open("/proc/self/status").read()
    hwm_kb = int(status.split("VmHWM:")[1].split()[0])
    out["maxrss_mb"] = hwm_kb / 1024
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flood", sorted(FLOODS))
def test_a_flooding_worker_cannot_grow_the_trusted_process(
    tmp_path: Path, mode: str, flood: str
) -> None:
    source = tmp_path / "flood.py"
    source.write_text(FLOODS[flood])
    source.chmod(0o644)
    op = "load" if flood == "notes_while_loading" else "call"
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(source), mode, op],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["kind"] == "protocol", out
    assert "bad message from the worker" in out["message"]
    flood_mb = 10 * 256
    assert out["maxrss_mb"] < 200, out  # well below the flood (2560 MB), below even one array
    assert out["maxrss_mb"] < flood_mb / 10


def _sandbox(source: str, **limits: int) -> Sandbox:
    return Sandbox(textwrap.dedent(source), mode="none", limits=Limits(**limits))


def test_the_trusted_sides_stream_does_not_count_against_the_exchange() -> None:
    """Like training: the worker asks for 24 batches of 1 MB with caps of 2 MB per message and
    4 MB per exchange; the 24 MB the trusted side sends are not metered."""
    source = (
        _PIPES
        + """
def create_example():
    got = 0
    for index in range(24):
        _send({"kind": "ask", "need": "batch", "index": index})
        header, arrays = wire.read_message(wire.fd_reader(_R))
        got += int(arrays["images"].sum())
    return got
"""
    )
    batch = np.ones(1 << 20, np.uint8)

    def answer(header: dict, _: dict) -> tuple[dict, dict]:
        assert header["need"] == "batch"
        return {"ok": True}, {"images": batch}

    with _sandbox(source, array_mb=2) as sandbox:
        assert sandbox.caps.exchange_bytes == 4 << 20
        reply = sandbox.request("call", {"name": "create_example"}, timeout=60, on_message=answer)
        assert reply.value == 24 * batch.size


def _requesting(
    sandbox: Sandbox, on_message: Callable[[dict, dict], object] | None = None
) -> ProbeError:
    with pytest.raises(ProbeError) as info:
        sandbox.request("call", {"name": "create_example"}, timeout=60, on_message=on_message)
    return info.value


def test_many_small_notes_overrun_the_exchange_cap() -> None:
    source = (
        _PIPES
        + """
def create_example():
    for index in range(100):
        _send({"kind": "note", "pad": "x" * (200 << 10)})
    return None
"""
    )
    seen: list[dict] = []
    with _sandbox(source, array_mb=2) as sandbox:
        error = _requesting(sandbox, lambda header, _: seen.append(header))
        assert error.kind == "protocol" and "exceeds" in error.message, error
        assert not sandbox.running  # the worker was stopped
    assert 0 < len(seen) < 100


def test_a_note_nobody_listens_to_is_a_protocol_error() -> None:
    source = (
        _PIPES
        + """
def create_example():
    _send({"kind": "note", "progress": 1})
    return None
"""
    )
    with _sandbox(source) as sandbox:
        error = _requesting(sandbox)
        assert error.kind == "protocol" and "unexpected 'note'" in error.message, error
