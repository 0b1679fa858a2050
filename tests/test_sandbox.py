"""The sandbox's wire protocol, probe semantics and limits (the hostile cases live in
test_hostile.py)."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from grader import wire, worker
from grader.sandbox import (
    Limits,
    ProbeError,
    Sandbox,
    bwrap_status,
    isolation_status,
    leftover_processes,
)
from grader.sandbox.paths import SANDBOX_ROOT, _python_binds
from tests.objloc import GRADED_PARTS

FIXTURES = Path(__file__).parent / "fixtures" / "hostile"
BWRAP_OK, BWRAP_WHY = bwrap_status()
LIMITS = Limits(address_space_mb=1024, wall_seconds=10, scratch_mb=64)


def _read(chunks: list[bytes], caps: wire.Caps = wire.DEFAULT_CAPS):
    buf = io.BytesIO(b"".join(chunks))

    def read_exact(n: int) -> bytes:
        data = buf.read(n)
        if len(data) != n:
            raise wire.WireEOF("short")
        return data

    return wire.read_message(read_exact, caps)


# --------------------------------------------------------------------------------------------
# wire


def test_wire_round_trip_keeps_dtype_shape_and_values() -> None:
    arrays = {
        "u8": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        "f16": np.array([1.5, np.nan], dtype=np.float16),
        "scalar": np.asarray(np.float32(0.25)),
        "bool": np.array([True, False]),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 3), dtype=np.int64),
    }
    header, got = _read(wire.encode_message({"x": [1, "a", None, 2.5]}, arrays))
    assert header == {"x": [1, "a", None, 2.5]}
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
        np.testing.assert_array_equal(got[name], arr)
        assert got[name].flags.writeable


@pytest.mark.parametrize(
    "arr", [np.array([1 + 2j]), np.array(["a"]), np.array([object()]), np.zeros(2, "f2,i4")]
)
def test_wire_refuses_non_numeric_dtypes(arr: np.ndarray) -> None:
    with pytest.raises(wire.WireError):
        wire.encode_message({}, {"a": arr})


def test_wire_refuses_pickled_object_arrays_on_read() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    blob = buf.getvalue()
    head = b'{"$arrays":[["a",%d]]}' % len(blob)
    with pytest.raises(wire.WireError, match="object"):
        _read([struct.pack(">I", len(head)), head, struct.pack(">Q", len(blob)), blob])


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack(">I", 2 << 20) + b"{}",  # header over the cap
        struct.pack(">I", 5) + b"[1,2]",  # not an object
        struct.pack(">I", 3) + b"{x}",  # not JSON
        struct.pack(">I", 10) + b"{}",  # truncated
        b"\x00",  # truncated length
    ],
)
def test_wire_malformed_headers_raise_wire_error(raw: bytes) -> None:
    with pytest.raises(wire.WireError):
        _read([raw])


def test_wire_caps_on_array_size_count_and_depth() -> None:
    caps = wire.Caps(array_bytes=1000, arrays=2)
    with pytest.raises(wire.WireError, match="cap"):
        wire.encode_message({}, {"a": np.zeros(1000)}, caps)
    with pytest.raises(wire.WireError, match="cap"):
        _read(wire.encode_message({}, {"a": np.zeros(2000, np.uint8)}), caps)
    with pytest.raises(wire.WireError):
        _read(wire.encode_message({}, {str(i): np.zeros(1) for i in range(3)}), caps)
    deep = "[" * 100 + "]" * 100
    raw = ('{"d":' + deep + "}").encode()
    with pytest.raises(wire.WireError, match="deeper"):
        _read([struct.pack(">I", len(raw)), raw])
    lying = wire.encode_message({}, {"a": np.zeros(4)})
    lying[-1] = lying[-1][:-8]  # payload shorter than the .npy header says
    lying[-2] = struct.pack(">Q", len(lying[-1]))
    head = b'{"$arrays":[["a",%d]]}' % len(lying[-1])
    with pytest.raises(wire.WireError):
        _read([struct.pack(">I", len(head)), head, lying[-2], lying[-1]])


def test_pack_and_resolve_round_trip() -> None:
    value = {"a": [np.arange(3), (1, 2.0)], "b": {3: "x"}, "c": None}
    tree, arrays = wire.pack(value)
    back = wire.resolve(tree, arrays)
    np.testing.assert_array_equal(back["a"][0], np.arange(3))
    assert back["a"][1] == [1, 2.0] and back["b"] == {3: "x"} and back["c"] is None
    opaque = wire.resolve({"$type": "m.T", "repr": "<T>"}, {})
    assert opaque == wire.Opaque("m.T", "<T>")
    with pytest.raises(wire.WireError):
        wire.resolve({"$array": "missing"}, {})
    with pytest.raises(wire.WireError):
        wire.pack({"x": object()})


# --------------------------------------------------------------------------------------------
# sandbox behaviour

SIMPLE = """
import numpy as np
print("loaded")

def create_example(rng=None):
    rng = np.random.default_rng(rng)
    return rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), 3, 0.25, float(rng.random())

def helper(x):
    return 1 / x

def broken(x):
    return helper(x)

def gen():
    i = 0
    while True:
        yield i
        i += 1

def spin():
    while True:
        pass
"""


@pytest.fixture(scope="module")
def simple() -> Sandbox:
    with Sandbox(SIMPLE, mode="auto", limits=LIMITS, graded_names=GRADED_PARTS) as sb:
        yield sb
    assert leftover_processes(sb.marker) == []


def test_load_reports_graded_names(simple: Sandbox) -> None:
    names = simple.start().value["names"]
    assert names["create_example"]["kind"] == "function"
    assert names["create_example"]["params"] == ["rng"]
    assert names["create_example"]["signature"]["text"] == "create_example(rng=None)"
    assert names["create_model"] == {"kind": "missing"}
    assert simple.isolation == ("bwrap" if BWRAP_OK else "landlock")  # auto: never "none"
    assert "loaded" in simple.output


def test_call_with_seeded_rng_is_reproducible(simple: Sandbox) -> None:
    args = {"name": "create_example", "seed": 7, "rng_arg": "rng"}
    a = simple.request("call", args, timeout=10).value
    b = simple.request("call", args, timeout=10).value
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:] == b[1:] and a[0].dtype == np.uint8 and a[0].shape == (4, 4, 3)


def test_learner_error_carries_only_learner_frames(simple: Sandbox) -> None:
    with pytest.raises(ProbeError) as info:
        simple.request("call", {"name": "broken", "args": [0]}, timeout=10)
    err = info.value
    assert err.kind == "learner_error" and "ZeroDivisionError" in err.message
    assert "in broken" in err.traceback and "in helper" in err.traceback
    assert not any(Path(dest).name in err.traceback for _, dest in worker.files())  # no worker file
    assert simple.running  # a learner error does not cost a restart


def test_generators_are_sampled(simple: Sandbox) -> None:
    value = simple.request("call", {"name": "gen", "sample": 3}, timeout=10).value
    assert isinstance(value, wire.Sampled) and list(value) == [0, 1, 2]
    assert value.type.endswith("generator")


def test_missing_name_and_unknown_op(simple: Sandbox) -> None:
    with pytest.raises(ProbeError) as info:
        simple.request("call", {"name": "nope"}, timeout=10)
    assert info.value.kind == "learner_error" and "not defined" in info.value.message
    with pytest.raises(ProbeError) as info:
        simple.request("frobnicate", {}, timeout=10)
    assert info.value.kind == "grader_error"  # a request the worker cannot serve: ours


def test_ask_without_a_handler_is_refused(simple: Sandbox) -> None:
    with pytest.raises(ProbeError) as info:
        simple.request(
            "train", {"factory": "create_model", "epochs": 1, "steps_per_epoch": 1}, timeout=10
        )
    # create_model is missing (the learner's), or TensorFlow does not load within this fixture's
    # small address space: a step of the worker's own, so the grader's
    assert info.value.kind in ("protocol", "learner_error", "grader_error")


def test_timeout_kills_and_restarts(simple: Sandbox) -> None:
    starts = simple.starts
    t0 = time.monotonic()
    with pytest.raises(ProbeError) as info:
        simple.request("call", {"name": "spin"}, timeout=2)
    assert info.value.kind == "timeout"
    assert time.monotonic() - t0 < 2 + 10
    assert not simple.running
    assert simple.request("call", {"name": "helper", "args": [4]}, timeout=10).value == 0.25
    assert simple.starts == starts + 1


def test_cpu_limit_kills_a_busy_worker() -> None:
    limits = Limits(**{**LIMITS.__dict__, "cpu_seconds": 2})
    with Sandbox(SIMPLE, mode="none", limits=limits) as sb, pytest.raises(ProbeError) as info:
        sb.request("call", {"name": "spin"}, timeout=30)
    assert info.value.kind == "crashed" and "SIGXCPU" in info.value.message


def test_syntax_error_is_a_cached_load_error() -> None:
    with Sandbox("def f(:\n    pass\n", mode="none", limits=LIMITS) as sb:
        for _ in range(2):
            with pytest.raises(ProbeError) as info:
                sb.request("call", {"name": "f"}, timeout=5)
            assert info.value.kind == "load_error" and "SyntaxError" in info.value.message
        assert sb.starts == 1 and not sb.running


def test_mode_none_says_what_is_lost() -> None:
    sb = Sandbox("x = 1\n", mode="none")
    assert sb.isolation == "none"
    assert "NO ISOLATION" in sb.isolation_note and "network" in sb.isolation_note
    sb.close()


@pytest.mark.bwrap
@pytest.mark.skipif(not BWRAP_OK, reason=BWRAP_WHY or "ok")
def test_bwrap_view_of_the_file_system() -> None:
    src = "import os\ndef look():\n    return sorted(os.listdir('/')), os.getuid(), os.getcwd()\n"
    with Sandbox(src, mode="bwrap", limits=LIMITS) as sb:
        top, uid, cwd = sb.request("call", {"name": "look"}, timeout=10).value
        slot_uid = (
            sb._tenant.uid
        )  # each concurrent sandbox has its own uid (grader.sandbox.tenancy)
    own = Path(SANDBOX_ROOT).name  # the worker's own folder: its copy and its home
    assert uid == slot_uid and cwd == f"{SANDBOX_ROOT}/home"
    # Only the system folders, the sandbox's own, and where the interpreter and venv live.
    interpreter_tops = {Path(p).parts[1] for p in _python_binds()}
    allowed = {"bin", "dev", "etc", "lib", "lib64", "proc", own, "sbin", "tmp", "usr"}
    assert own in top and set(top) <= allowed | interpreter_tops, top
    assert not {"home", "srv", "mnt", "opt"} - interpreter_tops & set(top)


# --------------------------------------------------------------------------------------------
# TensorFlow probes on a tiny learner (the only tests here that import TensorFlow)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(m, marks=pytest.mark.skipif(not ok, reason=why))
        for m in ("bwrap", "landlock")
        for ok, why in [isolation_status(m)]  # type: ignore[arg-type]
    ],
)
def tiny(request: pytest.FixtureRequest) -> Sandbox:
    """The tiny learner in each confined mode: TensorFlow must import and train in both."""
    source = (FIXTURES / "benign_tiny_model.py").read_text()
    with Sandbox(source, mode=request.param, limits=Limits(wall_seconds=60)) as sb:
        yield sb
    assert leftover_processes(sb.marker) == []


def test_model_probe_describes_and_predicts(tiny: Sandbox) -> None:
    images = np.zeros((3, 144, 144, 3), np.uint8)
    args = {"factory": "create_model", "seed": 1}
    info = tiny.request("model", args, {"images": images}, timeout=60).value
    outs = {o["name"]: o for o in info["outputs"]}
    assert set(outs) == {"class_out", "box_out"}
    assert outs["class_out"]["activation"] == "softmax" and outs["class_out"]["shape"] == [None, 9]
    assert info["compiled"] and info["loss"] == {
        "class_out": "categorical_crossentropy",
        "box_out": "mse",
    }
    assert info["metrics"] == {"class_out": ["accuracy"], "box_out": ["iou"]}
    assert info["inputs"] == [{"name": "image", "shape": [None, 144, 144, 3]}]
    probs = info["predictions"]["class_out"]
    assert probs.shape == (3, 9) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert info["predictions"]["box_out"].shape == (3, 2)


@pytest.mark.parametrize("graph", [False, True])
def test_metric_probe_runs_a_script(tiny: Sandbox, graph: bool) -> None:
    boxes = np.array([[0.1, 0.1], [0.5, 0.5]], np.float32)
    far = boxes + 0.6
    steps = [
        {"op": "update", "y_true": "t", "y_pred": "t"},
        {"op": "result"},
        {"op": "reset"},
        {"op": "update", "y_true": "t", "y_pred": "far"},
        {"op": "result"},
    ]
    args = {"class": "IoU", "steps": steps, "graph": graph}
    out = tiny.request("metric", args, {"t": boxes, "far": far}, timeout=60).value
    assert out["is_metric"] is True
    assert np.isclose(float(out["results"][0]), 1.0) and np.isclose(float(out["results"][1]), 0)


def test_callback_probe_counts_figures(tiny: Sandbox) -> None:
    x = np.zeros((4, 144, 144, 3), np.uint8)
    arrays = {
        "x": x,
        "class_out": np.eye(9, dtype=np.float32)[:4],
        "box_out": np.zeros((4, 2), np.float32),
    }
    args = {
        "class": "ShowTestImages",
        "factory": "create_model",
        "targets": {"class_out": {"$array": "class_out"}, "box_out": {"$array": "box_out"}},
        "epochs": 2,
        "steps": 1,
        "kwargs": {"n": 3},
    }
    out = tiny.request("callback", args, arrays, timeout=60).value
    assert out["is_callback"] and out["figures_created"] == 2
    assert out["figure_list_attributes"] == ["figures"]
    assert out["figures"][0]["axes"] == 3 and out["figures"][0]["rectangles"] == 3
    assert out["last_figure"].ndim == 3 and out["last_figure"].shape[2] == 3


def test_train_probe_streams_batches_and_predicts_unlabelled(tiny: Sandbox) -> None:
    rng = np.random.default_rng(0)
    asked: list[int] = []

    def on_message(header: dict, arrays: dict):
        assert header["need"] == "batch"
        asked.append(header["index"])
        labels = rng.integers(0, 9, 8)
        return {}, {
            "images": rng.integers(0, 256, (8, 144, 144, 3), dtype=np.uint8),
            "class_out": np.eye(9, dtype=np.float32)[labels],
            "box_out": rng.random((8, 2)).astype(np.float32),
        }

    test_images = np.full((5, 144, 144, 3), 255, np.uint8)
    out = tiny.request(
        "train",
        {
            "factory": "create_model",
            "schedule": "lr_schedule",
            "seed": 3,
            "epochs": 2,
            "steps_per_epoch": 1,
            "seconds": 60,
        },
        {"test_images": test_images},
        timeout=120,
        on_message=on_message,
    ).value
    assert out["steps"] == 2 and out["epochs"] == 2
    assert asked[:2] == [0, 1]
    assert len(out["history"]["loss"]) == 2 and "learning_rate" in out["history"]
    assert out["predictions"]["class_out"].shape == (5, 9)
    assert out["predictions"]["box_out"].shape == (5, 2)


def test_an_assignment_inside_a_folder_the_sandbox_shows_is_refused(tmp_path, monkeypatch):
    """Fail closed: an assignment loaded by path from inside the interpreter's folders (which
    the sandbox binds for the worker) would show its reference and hidden checks."""
    from grader.sandbox import SandboxUnavailable, paths, refuse_shown

    monkeypatch.setattr(paths, "_python_binds", lambda: [str(tmp_path)])
    course = tmp_path / "course"
    course.mkdir()
    with pytest.raises(SandboxUnavailable, match="shows to learner code"):
        refuse_shown([course])
    refuse_shown([tmp_path / "not-there.ipynb"])  # nothing there: nothing to show
    refuse_shown([Path(__file__).parent / "fixtures"])  # outside every shown folder
