"""Hostile submissions against the sandbox: every attack gets a verdict in time, changes nothing
outside the sandbox's temp dir, and leaves no process behind.

Each case runs in every isolation mode: bubblewrap and Landlock (each skipped, with the reason,
where it does not work here) and ``mode="none"`` (rlimits only, asked for explicitly). Cases that
only isolation can stop (reading the solutions, network, writing elsewhere, signalling another
submission's worker) assert the protection under bwrap and Landlock and, under ``none``, assert
and thereby document the loss.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader import wire
from grader.sandbox import (
    Limits,
    ProbeError,
    Sandbox,
    isolation_status,
    landlock,
    leftover_processes,
)
from grader.sandbox.process import _marker_pids

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "hostile"
LIMITS = Limits(
    address_space_mb=1024,
    cpu_seconds=60,
    processes=128,
    wall_seconds=10,
    scratch_mb=64,
)
TIMEOUT = 8.0

MODES = [
    *(
        pytest.param(m, marks=[*marks, pytest.mark.skipif(not ok, reason=why)])
        for m, marks in (("bwrap", [pytest.mark.bwrap]), ("landlock", []))
        for ok, why in [isolation_status(m)]  # type: ignore[arg-type]
    ),
    "none",
]
CONFINED = ("bwrap", "landlock")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def _source(name: str) -> str:
    return (FIXTURES / f"{name}.py").read_text()


def _procs_with(token: str) -> list[int]:
    """Live processes whose command line contains ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in cmdline and state != b"Z":
            found.append(int(entry))
    return found


@contextlib.contextmanager
def sandbox(name: str, mode: str, limits: Limits = LIMITS) -> Iterator[Sandbox]:
    """A sandbox for one fixture; on exit: no process left, private temp dir gone."""
    sb = Sandbox(_source(name), mode=mode, limits=limits)  # type: ignore[arg-type]
    try:
        yield sb
    finally:
        tmp = sb._tmp
        sb.close()
        assert leftover_processes(sb.marker) == []
        assert tmp is None or not tmp.exists()


def verdict(action: Callable[[], Any], limit: float) -> Any:
    """Run one probe; return its reply value or the ProbeError, asserting it came in time."""
    start = time.monotonic()
    try:
        out: Any = action().value
    except ProbeError as exc:
        out = exc
    assert time.monotonic() - start < limit + 10, "no verdict within the limit + 10 s"
    return out


def call(sb: Sandbox, name: str, *args: Any, timeout: float = TIMEOUT, **kwargs: Any) -> Any:
    tree, arrays = wire.pack([list(args), kwargs])
    return verdict(
        lambda: sb.request(
            "call", {"name": name, "args": tree[0], "kwargs": tree[1]}, arrays, timeout=timeout
        ),
        timeout + LIMITS.wall_seconds,
    )


# --------------------------------------------------------------------------------------------
# Hangs, exits and resource bombs: every mode must contain these.


def test_infinite_loop_at_import(mode: str) -> None:
    with sandbox("loop_at_import", mode, Limits(**{**LIMITS.__dict__, "wall_seconds": 3})) as sb:
        out = call(sb, "create_example")
        assert isinstance(out, ProbeError) and out.kind == "timeout", out
        assert "loading" in out.message
        again = call(sb, "create_example")  # cached: no second 3 s wait, same verdict
        assert isinstance(again, ProbeError) and again.kind == "timeout"
        assert sb.starts == 1


def test_infinite_loop_in_function(mode: str) -> None:
    with sandbox("loop_in_function", mode) as sb:
        out = call(sb, "create_example", timeout=3)
        assert isinstance(out, ProbeError) and out.kind == "timeout", out
        assert not sb.running
        assert call(sb, "still_fine") == 42  # restarted lazily, reloaded
        assert sb.starts == 2


def test_memory_bomb(mode: str) -> None:
    with sandbox("memory_bomb", mode) as sb:
        out = call(sb, "create_example", timeout=30)
        assert isinstance(out, ProbeError), out
        assert out.kind in ("learner_error", "crashed"), out
        if out.kind == "learner_error":
            assert "MemoryError" in out.message


def test_fork_bomb(mode: str) -> None:
    limits = Limits(**{**LIMITS.__dict__, "processes": 48})
    with sandbox("fork_bomb", mode, limits) as sb:
        if "ROOT" in sb.isolation_note:
            pytest.skip(f"the worker runs as root in mode {mode}: RLIMIT_NPROC cannot bind")
        out = call(sb, "create_example", timeout=5)
        assert isinstance(out, ProbeError) and out.kind in ("timeout", "crashed", "protocol"), out
        assert not sb.running


def test_os_exit_at_import(mode: str) -> None:
    with sandbox("os_exit_at_import", mode) as sb:
        out = call(sb, "create_example")
        assert isinstance(out, ProbeError) and out.kind == "crashed", out
        assert "status 0" in out.message


def test_sys_exit_at_import(mode: str) -> None:
    with sandbox("sys_exit_at_import", mode) as sb:
        out = call(sb, "create_example")
        assert isinstance(out, ProbeError) and out.kind == "load_error", out
        assert "sys.exit(0)" in out.message


def test_exit_inside_functions(mode: str) -> None:
    with sandbox("exit_in_function", mode) as sb:
        out = call(sb, "create_example")
        assert isinstance(out, ProbeError) and out.kind == "crashed", out
        assert "status 0" in out.message
        out = call(sb, "data_generator")
        assert isinstance(out, ProbeError) and out.kind == "learner_error", out
        assert "sys.exit(0)" in out.message
        assert sb.starts == 2


def test_detached_daemon_is_killed_on_close(mode: str) -> None:
    token = f"objloc-daemon-{uuid.uuid4().hex}"
    with sandbox("detached", mode) as sb:
        assert call(sb, "spawn", token) == "spawned"
        deadline = time.monotonic() + 5
        while not _procs_with(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _procs_with(token), "the daemon should exist while the sandbox runs"
    assert _procs_with(token) == []


def test_detached_daemon_is_killed_with_a_hung_worker(mode: str) -> None:
    token = f"objloc-daemon-{uuid.uuid4().hex}"
    with sandbox("detached", mode) as sb:
        out = call(sb, "spawn", token, hang=True, timeout=3)
        assert isinstance(out, ProbeError) and out.kind == "timeout", out
        assert _procs_with(token) == []  # gone with the worker, before close()


def test_print_flood_is_capped(mode: str) -> None:
    with sandbox("print_flood", mode) as sb:
        assert call(sb, "create_example", timeout=60) == "done"
        assert len(sb.output.encode()) < LIMITS.output_bytes + 200
        assert "[output truncated:" in sb.output


# --------------------------------------------------------------------------------------------
# Forged values: only data crosses.


def test_always_equal_and_nan_values_cross_as_data(mode: str) -> None:
    with sandbox("forged_values", mode) as sb:
        image, label, always, nan = call(sb, "create_example")
        assert type(image) is np.ndarray and image.dtype == np.uint8
        assert type(label) is int and label == 3 and label != 4
        assert isinstance(always, wire.Opaque) and always.type.endswith("AlwaysEqual")
        assert always != object() and always != 0.5
        assert np.isnan(nan)
        odd = call(sb, "odd_values")
        assert np.isnan(odd["nan_array"][0]) and np.isinf(odd["nan_array"][1])
        for key, dtype in (("complex", "complex128"), ("objects", "object"), ("strings", "<U1")):
            assert isinstance(odd[key], wire.Opaque) and odd[key].extra["dtype"] == dtype
        assert odd["wrong_shape"].shape == (7, 1) and odd["wrong_dtype"].dtype == np.int8
        assert odd[7] == "int key"
        depth, node = 0, odd["deep"]
        while isinstance(node, list):
            depth, node = depth + 1, node[0]
        assert isinstance(node, wire.Opaque) and depth < 30  # cut off, not recursed forever


def test_monkeypatching_cannot_forge_a_reply(mode: str) -> None:
    with sandbox("monkeypatch", mode) as sb:
        value = call(sb, "create_example")
        assert value != "ALL CHECKS PASSED"
        image, label, row, col = value
        assert np.array_equal(image, np.full((2, 2), 7)) and label == 99
        assert not np.allclose(image, 0)  # the trusted side's numpy is untouched
        assert (row, col) == (-1.0, -1.0)


@pytest.mark.parametrize("attack", ["huge_header", "object_array"])
def test_garbage_on_the_reply_pipe(mode: str, attack: str) -> None:
    with sandbox("wire_garbage", mode) as sb:
        out = call(sb, attack)
        assert isinstance(out, ProbeError) and out.kind == "protocol", out
        assert not sb.running
        assert isinstance(call(sb, "huge_header"), ProbeError)  # restarted and still contained


# --------------------------------------------------------------------------------------------
# What only isolation stops: asserted under bwrap, the loss documented under none.


@pytest.fixture
def secrets() -> Iterator[dict[str, Path]]:
    """Sentinel files in solutions/ and the course's checks/ (created if missing, then removed)."""
    token = uuid.uuid4().hex
    made_dirs = []
    paths = {}
    for folder in (ROOT / "solutions", ROOT / "assignments" / "object_localization" / "checks"):
        if not folder.exists():
            folder.mkdir(parents=True)
            made_dirs.append(folder)
        path = folder / f"_sandbox_sentinel_{token}.txt"
        path.write_text(f"SECRET {token}\n")
        path.chmod(0o644)
        paths[folder.name] = path
    paths["reference"] = ROOT / "assignments" / "object_localization" / "reference.py"
    try:
        yield paths
    finally:
        for key in ("solutions", "checks"):
            paths[key].unlink(missing_ok=True)
        for folder in made_dirs:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if nobody else put files there meanwhile


def test_reading_solutions_checks_and_reference(mode: str, secrets: dict[str, Path]) -> None:
    with sandbox("read_secrets", mode) as sb:
        paths = [str(p) for p in secrets.values()]
        out = call(sb, "read_files", paths)
        listing = call(sb, "list_dir", str(ROOT))
        imported = call(sb, "import_reference")
        assert call(sb, "capabilities") == 0  # never a capability, in any mode
        if call(sb, "whoami") == 0:  # uid 0 where uid 65534 cannot run Python: said so
            assert mode != "bwrap" and "ROOT" in sb.isolation_note
        accounts = call(sb, "read_files", ["/etc/passwd"])["/etc/passwd"]
        if sb.isolation in CONFINED:
            assert all(v.startswith("DENIED:") for v in out.values()), out
            # the host's accounts stay outside: bwrap shows its own passwd, Landlock none
            host = {line.split(":")[0] for line in Path("/etc/passwd").read_text().splitlines()}
            seen = {line.split(":")[0] for line in accounts.removeprefix("READ:").splitlines()}
            assert not (host & seen) - {"root", "nobody"}, accounts
            # /work/main exists only as the parent of the bound venv (bwrap)
            assert listing == [".venv"] or listing.startswith("DENIED:"), listing
            assert imported.startswith("DENIED:")
        else:  # documents the loss: no file-system isolation without bwrap
            assert out[str(secrets["solutions"])].startswith("READ:SECRET")
            assert out[str(secrets["reference"])].startswith("READ:")
            assert "solutions" in listing
            assert imported.startswith("DENIED:")  # not on sys.path, but readable (above)


def test_network_connection(mode: str) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    received: list[bytes] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                received.append(conn.recv(100))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with sandbox("network", mode) as sb:
            out = call(sb, "connect", port)
            if sb.isolation in CONFINED:
                assert out.startswith("FAILED:"), out
            else:  # documents the loss: the host network is reachable without bwrap
                assert out == "CONNECTED"
                thread.join(5)
                assert received == [b"stolen answers"]
    finally:
        server.close()
        thread.join(5)
    if mode in CONFINED:
        assert received == []


def test_writing_outside_the_temp_dir(mode: str) -> None:
    target_dir = Path(tempfile.mkdtemp(prefix="objloc-victim-"))
    target_dir.chmod(0o777)  # world-writable: only isolation, not the uid, can protect it
    target = target_dir / "results.json"
    grader_file = ROOT / "grader" / f"_forged_{uuid.uuid4().hex}.py"
    try:
        with sandbox("write_outside", mode) as sb:
            out = call(sb, "write_file", str(target))
            into_grader = call(sb, "write_file", str(grader_file))
            if sb.isolation == "none" and "ROOT" in sb.isolation_note:
                assert into_grader == "WROTE"  # documents the loss: root owns the grader's tree
            else:
                assert into_grader.startswith("FAILED:")  # root-owned tree, or Landlock
                assert not grader_file.exists()
            if sb.isolation == "bwrap":
                assert out.startswith("FAILED:") or out == "WROTE"  # WROTE = into its own tmpfs
                assert not target.exists()
            elif sb.isolation == "landlock":
                assert out.startswith("FAILED:") and not target.exists()
            else:  # documents the loss: world-writable host folders are writable
                assert out == "WROTE" and target.read_text() == "forged results"
    finally:
        shutil.rmtree(target_dir, ignore_errors=True)
        grader_file.unlink(missing_ok=True)


def test_signalling_a_concurrent_submission(mode: str) -> None:
    with sandbox("read_secrets", mode) as victim, sandbox("signal_others", mode) as attacker:
        assert call(victim, "whoami") is not None  # running
        pids = _marker_pids(victim.marker)  # its launcher and worker, as the host sees them
        assert pids
        out = call(attacker, "kill", pids)
        scoped = attacker.isolation == "bwrap" or (
            attacker.isolation == "landlock" and landlock.abi_version() >= 6
        )
        if scoped:  # another PID namespace, or Landlock's signal scope (ABI >= 6)
            assert not any(v == "KILLED" for v in out.values()), out
            assert victim.running and call(victim, "whoami") is not None
            assert victim.starts == 1
        else:  # documents the loss: the same uid (or root) may signal the neighbour
            assert "KILLED" in out.values(), out


def test_changing_the_mode_of_a_host_file(mode: str, tmp_path: Path) -> None:
    """Landlock does not mediate chmod: a worker that owns host files (uid 0 without
    capabilities) must still not make one setuid or world-writable (seccomp refuses)."""
    target = tmp_path / "tool"
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    tmp_path.chmod(0o755)
    with sandbox("write_outside", mode) as sb:
        out = call(sb, "chmod", str(target))
        owner_without_isolation = sb.isolation == "none" and "ROOT" in sb.isolation_note
    if owner_without_isolation:  # documents the loss: uid 0 owns the file
        assert out == "CHANGED" and target.stat().st_mode & 0o7777 == 0o4777
    else:
        assert out.startswith("FAILED:"), out
        assert target.stat().st_mode & 0o7777 == 0o755
