"""Many sandboxes at once: a hostile submission cannot change the verdict of the one beside it.

Each hostile neighbour (fork bomb holding its process limit, memory hog over 4 processes, CPU hog
of setsid() children, scratch filler) runs in one thread while the benign tiny model loads and
answers its probes in another; the benign answers must equal those it gives alone, and the hostile
sandbox must end limited and leave no process, cgroup or scratch folder. Plus: distinct uids, the
sweep of what dead graders leave, and failures of the grader told apart from the submission's.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader import wire
from grader.sandbox import Limits, ProbeError, Sandbox, bwrap_status, leftover_processes
from grader.sandbox.cgroups import (
    CGROUP_PREFIX,
    Cgroups,
    CgroupVersion,
    create_cgroups,
    sweep_cgroups,
)
from grader.sandbox.scratch import OWNER_FILE, SCRATCH_PREFIX, UNLOCKED_SECONDS, sweep_scratch
from grader.sandbox.uids import UID_BASE, UID_SLOTS, acquire_slot, slot_is_free, uid_pids
from grader.sandbox.watch import Watch, descendants

FIXTURES = Path(__file__).parent / "fixtures" / "hostile"
BWRAP_OK, BWRAP_WHY = bwrap_status()
ROOT_USER = os.geteuid() == 0
HOSTILE_LIMITS = Limits(
    address_space_mb=1024,
    cpu_seconds=120,
    processes=48,
    wall_seconds=20,
    scratch_mb=64,
    memory_mb=768,
    pids=64,
)
BENIGN_LIMITS = Limits(wall_seconds=120)
ATTACK_SECONDS = 12

MODES = [
    pytest.param(
        "bwrap",
        marks=[pytest.mark.bwrap, pytest.mark.skipif(not BWRAP_OK, reason=BWRAP_WHY or "ok")],
    ),
    "none",
]

HOSTILE = textwrap.dedent(
    """
    import os, signal, time

    def _hold(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)

    def fork_bomb(seconds):
        # fork sleeping children until the process limit bites, and keep holding it
        end, held = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            try:
                pid = os.fork()
            except OSError:
                time.sleep(0.01)
                continue
            if pid == 0:
                while True:
                    time.sleep(1)
            held += 1
        return held

    def memory_hog(seconds, mb=300, children=4):
        # 4 processes of 300 MB each: each one under RLIMIT_AS, together over the sandbox's limit
        pids = []
        for _ in range(children):
            pid = os.fork()
            if pid == 0:
                hoard = []
                for _ in range(mb // 16):
                    block = bytearray(16 << 20)
                    block[::4096] = b"x" * len(block[::4096])
                    hoard.append(block)
                while True:
                    time.sleep(1)
            pids.append(pid)
        _hold(seconds)
        killed = 0
        for pid in pids:
            done, status = os.waitpid(pid, os.WNOHANG)
            killed += bool(done) and os.WIFSIGNALED(status)
        return killed

    def cpu_hog(seconds, children=32):
        # children that each start their own session (one scheduler autogroup each) and spin
        for _ in range(children):
            if os.fork() == 0:
                os.setsid()
                while True:
                    pass
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return "spun"

    def disk_filler(seconds):
        # fill the scratch folder (several files, each under RLIMIT_FSIZE) until it refuses
        home, total, chunk = os.environ["HOME"], 0, b"x" * (1 << 20)
        try:
            for i in range(10_000):
                with open(f"{home}/fill-{i}", "wb") as fh:
                    for _ in range(32):
                        fh.write(chunk)
                        fh.flush()
                        total += len(chunk)
        except OSError:
            pass
        return total

    def spin(seconds):
        t0 = time.process_time()
        while time.process_time() - t0 < seconds:
            pass
        return "spun"

    def exit_125():
        os._exit(125)

    def new_session():
        # a child calls setsid(): its session before and after
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            before = os.getsid(0)
            os.setsid()
            os.write(w, f"{before} {os.getsid(0)}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        return [int(x) for x in os.read(r, 100).split()]
    """
)


def _pack_call(sb: Sandbox, name: str, *args: Any, timeout: float) -> Any:
    tree, arrays = wire.pack([list(args), {}])
    try:
        return sb.request(
            "call", {"name": name, "args": tree[0], "kwargs": tree[1]}, arrays, timeout=timeout
        ).value
    except ProbeError as exc:
        return exc


@contextlib.contextmanager
def sandbox(source: str, mode: str, limits: Limits) -> Iterator[Sandbox]:
    """A sandbox that, on exit, must leave no process, cgroup, uid process or scratch folder."""
    sb = Sandbox(source, mode=mode, limits=limits)  # type: ignore[arg-type]
    try:
        yield sb
    finally:
        tmp, tenant = sb._tmp, sb._tenant
        sb.close()
        assert leftover_processes(sb.marker) == []
        assert tmp is None or not tmp.exists()
        if tenant is not None:
            groups = tenant.cgroups.groups.values() if tenant.cgroups else []
            assert [g for g in groups if g.exists()] == []
            if ROOT_USER:
                assert uid_pids(tenant.uid) == []


def benign_answers(sb: Sandbox) -> dict[str, Any]:
    """The benign learner's answers: a seeded example and the seeded model's predictions."""
    out: dict[str, Any] = {}
    out["example"] = _pack_call(sb, "create_example", 7, timeout=60)
    try:
        args = {"factory": "create_model", "seed": 1}
        images = np.zeros((2, 144, 144, 3), np.uint8)
        info = sb.request("model", args, {"images": images}, timeout=120).value
        out["predictions"] = info["predictions"]
    except ProbeError as exc:
        out["predictions"] = exc
    return out


def assert_same(got: Any, want: Any) -> None:
    assert not isinstance(got, ProbeError), got
    if isinstance(want, dict):
        assert set(got) == set(want)
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert_same(a, b)
    elif isinstance(want, np.ndarray):
        np.testing.assert_array_equal(got, want)
    else:
        assert got == want


@pytest.fixture(scope="module")
def benign_source() -> str:
    return (FIXTURES / "benign_tiny_model.py").read_text()


@pytest.fixture(scope="module")
def benign_alone(benign_source: str) -> dict[str, Any]:
    with sandbox(benign_source, "auto", BENIGN_LIMITS) as sb:
        answers = benign_answers(sb)
    assert_same(answers, answers)  # the baseline itself is a real answer, not an error
    return answers


def _wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _pss(pids: set[int]) -> int:
    """Summed proportional set size of anonymous and shared memory (what a hog allocates): unlike
    summed RSS, pages forked children share count once. File-backed pages (the interpreter's and
    numpy's code) are left out: the kernel may charge them to the cgroup that first read them
    (the test's own), so they are not the submission's memory; counting them read 845 MB against
    a 768 MB group under load."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                    total += int(line.split()[1]) << 10
    return total


class SummedMemory:
    """Samples the summed anonymous PSS of every process below a sandbox's launcher (the test's
    own view, not the grader's)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb, self.peak, self._stop = sb, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            worker = self.sb._worker
            if worker is not None:
                tree = descendants(worker.proc.pid)
                self.peak = max(self.peak, _pss(tree))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@pytest.mark.parametrize("attack", ["fork_bomb", "memory_hog", "cpu_hog", "disk_filler"])
def test_hostile_neighbour_leaves_the_benign_verdict_unchanged(
    mode: str, attack: str, benign_source: str, benign_alone: dict[str, Any]
) -> None:
    hostile_out: list[Any] = []
    peak: list[int] = []
    limits = HOSTILE_LIMITS
    if attack == "fork_bomb":  # the same process limits as the benign one: it holds them all
        same = ("processes", "pids", "memory_mb")
        limits = Limits(**{**limits.__dict__, **{k: getattr(BENIGN_LIMITS, k) for k in same}})
    with sandbox(HOSTILE, mode, limits) as bad:
        bad.start()
        memory = SummedMemory(bad)

        def run_hostile() -> None:
            hostile_out.append(_pack_call(bad, attack, ATTACK_SECONDS, timeout=60))

        thread = threading.Thread(target=run_hostile)
        thread.start()
        try:
            if attack == "fork_bomb":  # the benign one starts while the bomb holds its limit
                _wait_for(
                    lambda: (
                        len(descendants(bad._worker.proc.pid)) > limits.processes // 2
                        if bad._worker
                        else False
                    ),
                    10,
                )
            else:
                time.sleep(1)
            with sandbox(benign_source, mode, BENIGN_LIMITS) as good:
                answers = benign_answers(good)
                assert good._tenant is not None and bad._tenant is not None
                uids = {good._tenant.uid, bad._tenant.uid}
        finally:
            thread.join()
            peak.append(memory.stop())
    assert_same(answers, benign_alone)
    assert len(uids) == 2 or not ROOT_USER
    out = hostile_out[0]
    if attack == "fork_bomb":  # held at most its own limit, then ended
        assert isinstance(out, int) and 0 < out < limits.pids, out
    elif attack == "memory_hog":  # the 4 x 300 MB never fitted under 768 MB together
        assert isinstance(out, ProbeError) or out >= 1, out
        # The kernel lets a task being OOM-killed charge past memory.max while it exits, so the
        # sampled peak may pass the limit for a moment: 809 MB (1.053x) was read once in a fresh
        # clone's run. 1.10x (845 MB) keeps that margin and stays far under the 1200 MB the four
        # children reach unconfined.
        assert peak[0] <= (limits.memory_mb << 20) * 1.10, peak[0] >> 20
    elif attack == "cpu_hog":
        assert out == "spun" or isinstance(out, ProbeError), out
    elif isinstance(out, ProbeError):  # the disk watch (no tmpfs: not root) killed it
        assert out.kind == "crashed" and "the scratch folder holds" in bad.output, out
    else:
        assert isinstance(out, int) and out <= (limits.scratch_mb + 1) << 20, out


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


# --------------------------------------------------------------------------------------------
# Cheap cases: no TensorFlow


def test_concurrent_sandboxes_get_distinct_uids_and_groups(mode: str) -> None:
    source = "import os\ndef who():\n    return [os.getuid(), os.getgid()]\n"
    with sandbox(source, mode, HOSTILE_LIMITS) as a, sandbox(source, mode, HOSTILE_LIMITS) as b:
        ua, ub = _pack_call(a, "who", timeout=20), _pack_call(b, "who", timeout=20)
        assert a._tenant is not None and b._tenant is not None
        assert a._tenant.slot.index != b._tenant.slot.index
        if not ROOT_USER:
            pytest.skip("not root: no setuid, the slot only names the cgroups")
        if not a._inner:
            pytest.skip(
                "the worker keeps a capability-less uid 0 in this mode (the interpreter is "
                "unreadable to other uids here): per-submission limits come from cgroups"
            )
        assert ua[0] != ub[0] and ua[0] == a._tenant.uid and ub[0] == b._tenant.uid
        assert UID_BASE <= ua[0] < UID_BASE + UID_SLOTS
        assert "per submission" in a.isolation_note


def test_slot_is_released_on_close_and_when_the_process_dies() -> None:
    slot = acquire_slot()
    assert not slot_is_free(slot.index)
    slot.release()
    assert slot_is_free(slot.index)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from grader.sandbox import uids; import time\n"
            "s = uids.acquire_slot(); print(s.index, flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        index = int(holder.stdout.readline())
        assert not slot_is_free(index)
    finally:
        holder.kill()
        holder.wait()
    assert slot_is_free(index)


def test_memory_watch_kills_a_hog_without_cgroups(mode: str) -> None:
    limits = Limits(**{**HOSTILE_LIMITS.__dict__, "cgroups": False, "memory_mb": 512})
    with sandbox(HOSTILE, mode, limits) as sb:
        out = _pack_call(sb, "memory_hog", 20, timeout=60)
        assert isinstance(out, ProbeError) and out.kind == "crashed", out
        assert "over its 512 MB limit" in sb.output
        assert sb._tenant is not None and sb._tenant.peak_memory <= (512 + 200) << 20
        assert "memory: watch of summed RSS" in sb.isolation_note


def test_watch_caps_an_uncapped_disk_scratch(tmp_path: Path) -> None:
    """The fallback for disk scratch without a tmpfs (non-root): the watch kills the writer."""
    writer = "import sys,time\nopen(sys.argv[1],'wb').write(b'x'*(8<<20))\ntime.sleep(60)"
    parent = "import subprocess,sys\nsys.exit(subprocess.call(sys.argv[1:]))"
    launcher = subprocess.Popen(
        [sys.executable, "-c", parent, sys.executable, "-c", writer, str(tmp_path / "f")]
    )
    try:
        watch = Watch(launcher.pid, None, tmp_path, 4 << 20).start()
        assert launcher.wait(timeout=20) != 0  # the writer was killed, so its parent ended
        watch.stop()
        # the size as the watch sampled it: the 8 MB write may still be under way (6 MB was read)
        held = re.search(r"the scratch folder holds (\d+) MB, over its 4 MB limit", watch.killed)
        assert held is not None and 4 < int(held.group(1)) <= 8, watch.killed
    finally:
        launcher.kill()
        launcher.wait()


def test_exit_code_of_the_submission_cannot_claim_a_grader_error(mode: str) -> None:
    with sandbox(HOSTILE, mode, HOSTILE_LIMITS) as sb:
        out = _pack_call(sb, "exit_125", timeout=20)
        assert isinstance(out, ProbeError) and out.kind == "crashed", out


@pytest.mark.skipif(not ROOT_USER, reason="cgroups are created as root here")
def test_a_cgroup_that_cannot_be_joined_is_a_grader_error(mode: str) -> None:
    with sandbox(HOSTILE, mode, HOSTILE_LIMITS) as sb:
        tenant = sb._ensure_tenant()
        if tenant.cgroups is None:
            pytest.skip("no cgroup can be created here")
        next(iter(tenant.cgroups.groups.values())).rmdir()  # vanished under us
        out = _pack_call(sb, "spin", 0.1, timeout=20)
        assert isinstance(out, ProbeError) and out.kind == "grader_error", out
        assert "cgroup.procs" in out.message


# --------------------------------------------------------------------------------------------
# Sweeps: what a dead grader left is removed, what a live one holds is not


def test_stale_scratch_is_swept_and_a_live_one_is_not(tmp_path: Path) -> None:
    stale = tmp_path / f"{SCRATCH_PREFIX}stale"
    (stale / "scratch").mkdir(parents=True)
    (stale / OWNER_FILE).write_text("4242\n")  # its owner died: the lock is free
    orphan = tmp_path / f"{SCRATCH_PREFIX}nolock"
    orphan.mkdir()
    old = time.time() - UNLOCKED_SECONDS - 60
    os.utime(orphan, (old, old))
    fresh = tmp_path / f"{SCRATCH_PREFIX}fresh"  # being set up right now
    fresh.mkdir()
    other = tmp_path / "someone-elses"
    other.mkdir()
    live = tmp_path / f"{SCRATCH_PREFIX}live"
    live.mkdir()
    holder = subprocess.Popen(  # another grader process holds this one
        [
            sys.executable,
            "-c",
            "import fcntl,sys,time\nf=open(sys.argv[1],'w')\n"
            "fcntl.flock(f, fcntl.LOCK_EX); print('ok', flush=True); time.sleep(60)",
            str(live / OWNER_FILE),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"ok"
        removed = sweep_scratch(tmp_path)
        assert sorted(removed) == sorted([stale, orphan])
        assert not stale.exists() and not orphan.exists()
        assert live.exists() and fresh.exists() and other.exists()
    finally:
        holder.kill()
        holder.wait()
    assert sweep_scratch(tmp_path) == [live]  # its grader died meanwhile


def test_sandbox_scratch_survives_a_concurrent_sweep(tmp_path: Path) -> None:
    with sandbox(HOSTILE, "none", HOSTILE_LIMITS) as sb:
        sb.scratch_parent = tmp_path
        assert _pack_call(sb, "spin", 0.01, timeout=20) == "spun"
        assert sb._tmp is not None and sb._tmp.parent == tmp_path
        assert sweep_scratch(tmp_path) == []  # its owner lock is held: live
        assert sb._tmp.exists()


def test_a_killed_grader_leaves_nothing_after_the_next_sweep(tmp_path: Path) -> None:
    """SIGKILL the trusted process mid-probe: its scratch folder and cgroups are swept later."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from grader.sandbox import Sandbox, Limits
        sb = Sandbox({HOSTILE!r}, mode="none", limits=Limits(wall_seconds=20),
                     scratch_parent=Path(sys.argv[1]))
        sb.start()
        g = sb._tenant.cgroups
        print(sb._tmp, sb._tenant.slot.index, *(g.groups.values() if g else []), flush=True)
        time.sleep(60)
        """
    )
    grader = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        line = grader.stdout.readline().decode().split()
    finally:
        grader.kill()
        grader.wait()
    scratch, slot, groups = Path(line[0]), int(line[1]), [Path(g) for g in line[2:]]
    assert scratch.exists()
    assert sweep_scratch(tmp_path) == [scratch]
    assert not scratch.exists()
    if groups:
        assert _wait_for(lambda: slot_is_free(slot), 10)
        # the launcher noticed its parent's death and killed the worker; the groups remain
        assert all(g.exists() for g in groups)
        swept = sweep_cgroups()
        assert set(groups) <= set(swept)
        assert not any(g.exists() for g in groups)


@pytest.mark.skipif(not ROOT_USER, reason="cgroups are created as root here")
def test_stale_cgroup_is_swept_and_a_live_one_is_not() -> None:
    free = UID_SLOTS - 1
    assert slot_is_free(free)
    stale = create_cgroups(f"{CGROUP_PREFIX}{free}", 64 << 20, 8, 100)
    if stale is None:
        pytest.skip("no cgroup can be created here")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for procs in stale.procs_files:
            Path(procs).write_text(str(sleeper.pid))
        with sandbox(HOSTILE, "none", HOSTILE_LIMITS) as sb:
            live = sb._ensure_tenant().cgroups
            assert live is not None
            swept = sweep_cgroups()
            assert set(stale.groups.values()) <= set(swept)
            assert not any(g.exists() for g in stale.groups.values())
            assert all(g.exists() for g in live.groups.values())
            assert sleeper.wait(timeout=10) == -9  # what was left inside was killed
    finally:
        sleeper.kill()
        sleeper.wait()
        stale.remove()


def test_oom_kill_under_its_own_limit_is_the_submission_s_crash(mode: str) -> None:
    limits = Limits(**{**HOSTILE_LIMITS.__dict__, "memory_mb": 256, "address_space_mb": 2048})
    with sandbox((FIXTURES / "memory_bomb.py").read_text(), mode, limits) as sb:
        out = _pack_call(sb, "create_example", timeout=60)
        assert isinstance(out, ProbeError) and out.kind == "crashed", out
        if sb._tenant is not None and "memory" in sb._tenant.controllers:
            assert "grader error" not in sb.output


def test_oom_kill_from_outside_its_limit_is_a_grader_error(tmp_path: Path) -> None:
    """The accounting behind grader_error: an OOM kill in the group although its own limit
    never refused a charge means the pressure came from outside (another slot, the machine)."""
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    (tmp_path / "memory.failcnt").write_text("0\n")
    (tmp_path / "memory.memsw.failcnt").write_text("0\n")
    (tmp_path / "memory.max_usage_in_bytes").write_text(f"{100 << 20}\n")
    groups = Cgroups(CgroupVersion.V1, {"memory": tmp_path}, 256 << 20)
    groups.mark()
    assert groups.killed_by_grader() is None
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert "stayed under its own 256 MB limit" in (groups.killed_by_grader() or "")
    (tmp_path / "memory.max_usage_in_bytes").write_text(f"{256 << 20}\n")  # its limit bit
    assert groups.killed_by_grader() is None


@pytest.mark.parametrize("cgroups", [True, False])
def test_sessions_cannot_buy_cpu(mode: str, cgroups: bool) -> None:
    """With a cpu cgroup, setsid() works and the group shares the CPU; without one (and without
    bwrap, whose --new-session needs setsid) setsid() is made a no-op, as the note says."""
    limits = Limits(**{**HOSTILE_LIMITS.__dict__, "cgroups": cgroups})
    with sandbox(HOSTILE, mode, limits) as sb:
        before, after = _pack_call(sb, "new_session", timeout=20)
        assert sb._tenant is not None
        filtered = sb._tenant.filters_setsid(sb.isolation == "bwrap")
        if "cpu" in sb._tenant.controllers:
            assert not filtered and after != before
        elif filtered:
            assert after == before
            assert "setsid() made a no-op" in sb.isolation_note
        else:
            assert after != before
            assert "CPU NOT shared per submission" in sb.isolation_note
