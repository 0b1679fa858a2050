"""Start, talk to and stop the isolated worker that runs learner code.

Why a separate process and this much care: learner code must never decide its own verdict. The
worker (``grader/worker.py``) only ever returns data over the ``grader.wire`` protocol; the checks
run here, in the trusted process. Isolation, from strongest to weakest:

* ``bwrap``: bubblewrap with only ``/usr``, a few ``/etc`` files, the interpreter prefix and the
  venv bound read-only, a private copy of ``worker.py`` + ``wire.py`` (so ``grader/reference.py``,
  ``grader/checks/``, ``solutions/`` and result folders do not exist inside), a size-capped tmpfs as
  the only writable place, no network, a private PID namespace, and the worker dropped to uid 65534
  with no capabilities (``setpriv``) so that ``RLIMIT_NPROC`` binds.
* ``rlimits-only`` (no usable bwrap): the same worker as uid 65534 with rlimits, but it sees the
  host file system and network; :attr:`Sandbox.isolation_note` says exactly what is lost.

Always: rlimits (address space, CPU seconds, processes, file size, open files), a wall-clock
timeout per request, captured and capped output, and a small launcher process that is a child
subreaper: every process the worker starts, even double-forked and ``setsid``-detached ones, is
re-parented to it and killed when the worker stops. Nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from grader import wire

NOBODY = 65534
SANDBOX_RT = "/sandbox/rt"
SANDBOX_HOME = "/tmp"
MARKER_ENV = "OBJLOC_SANDBOX"
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "passwd",
    "group",
    "nsswitch.conf",
    "localtime",
    "hosts",
    "host.conf",
    "alternatives",
    "ssl",
    "fonts",
    "mime.types",
)
_HERE = Path(__file__).resolve().parent

Mode = Literal["auto", "bwrap", "none"]
OnMessage = Callable[[dict[str, Any], dict[str, np.ndarray]], Any]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one worker.

    ``address_space_mb`` is RLIMIT_AS: TensorFlow's import maps ~1.5 GB of virtual memory and a small
    training run ~2.7 GB (measured, 2 threads, ``MALLOC_ARENA_MAX=2``), so 4 GB leaves room while a
    memory bomb still fails fast. ``wall_seconds`` bounds worker start + loading the learner code;
    each request has its own timeout. ``processes`` counts threads too (TF starts dozens) and is
    per uid, shared by concurrent workers.
    """

    address_space_mb: int = 4096
    cpu_seconds: int = 600
    processes: int = 256
    file_size_mb: int = 64
    open_files: int = 256
    wall_seconds: float = 120.0
    scratch_mb: int = 512
    output_bytes: int = 1 << 20
    threads: int = 2
    array_mb: int = 256


class ProbeError(Exception):
    """A probe gave no data reply: kind is timeout, crashed, protocol, learner_error or load_error."""

    KINDS = frozenset({"timeout", "crashed", "protocol", "learner_error", "load_error"})

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind if kind in self.KINDS else "protocol"
        self.message = message
        self.traceback = traceback


class SandboxUnavailable(RuntimeError):
    """mode="bwrap" was asked for and bubblewrap does not work here."""


@dataclass
class Reply:
    """A data reply: the JSON header and the arrays it references."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def value(self) -> Any:
        """The ``result`` tree with array refs resolved (see ``wire.resolve``)."""
        return wire.resolve(self.header.get("result"), self.arrays)


class _Timeout(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The launcher: runs as the parent of the worker command, outside bwrap, stdlib only.


def _launcher_main() -> None:  # pragma: no cover - runs in its own interpreter
    """Subreaper parent of the worker: applies rlimits, then kills every descendant at the end.

    It stops when the trusted side closes the lifeline pipe (or dies) or when the worker exits.
    Its exit code is the worker's (128 + signal number when killed by a signal).
    """
    import contextlib
    import ctypes
    import json
    import os
    import resource
    import select
    import signal
    import sys
    import time

    spec = json.loads(sys.argv[1])
    life = spec["lifeline"]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans re-parent to us
    pid = os.fork()
    if pid == 0:
        try:
            os.close(life)
            for res, soft, hard in spec["rlimits"]:
                resource.setrlimit(res, (soft, hard))
            os.execve(spec["cmd"][0], spec["cmd"], os.environ)
        except BaseException as exc:
            os.write(2, f"sandbox launcher: cannot start the worker: {exc}\n".encode())
        os._exit(127)
    for fd in spec["close"]:
        os.close(fd)
    me = os.getpid()
    status = None

    def reap() -> None:
        nonlocal status
        while True:
            try:
                child, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if child == 0:
                return
            if child == pid:
                status = st

    def descendants() -> set:
        parent = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat", "rb") as fh:
                        parent[int(name)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    pass
        found, frontier = set(), {me}
        while frontier:
            frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
            found |= frontier
        return found

    while status is None:
        ready, _, _ = select.select([life], [], [], 0.05)
        reap()
        if ready:
            break
    for _ in range(2000):  # fork bombs respawn while we kill: repeat until nothing is left
        procs = descendants()
        if not procs:
            break
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.002)
        reap()
    reap()
    code = 0 if status is None else os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


_LAUNCHER_SRC = (
    textwrap.dedent(inspect.getsource(_launcher_main)) + "\n_launcher_main()\n"
).replace("# pragma: no cover - runs in its own interpreter", "")


# --------------------------------------------------------------------------------------------
# Probing what works on this machine (cached per process)

_probe_lock = threading.Lock()
_probe_cache: dict[str, Any] = {}


def _python() -> str:
    """The worker's interpreter: the one running the grader (it has TensorFlow installed)."""
    return sys.executable


def _python_binds() -> list[str]:
    """Folders the interpreter and its packages live in (outside /usr), deduplicated."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    real = Path(os.path.realpath(_python())).parent.parent
    paths.add(str(real))
    out: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths}, key=len):
        if p.startswith("/usr/") or p == "/usr":
            continue
        if any(p == q or p.startswith(q + "/") for q in out):
            continue
        out.append(p)
    return out


def _setpriv_args(extra_caps: bool = False) -> list[str]:
    caps = ["--inh-caps=-all", "--bounding-set=-all"]
    if extra_caps:
        caps = [
            "--inh-caps=-all,+dac_read_search",
            "--ambient-caps=-all,+dac_read_search",
            "--bounding-set=-all,+dac_read_search",
        ]
    return [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        *caps,
        "--no-new-privs",
    ]


def _bwrap_args(rt: str | None, scratch_bytes: int) -> list[str]:
    """The bwrap command line (without the inner command), as DESIGN.md describes."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid"]
    args += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() != 0:
        args += ["--unshare-user"]
    made: set[str] = set()

    def parents(path: str) -> None:
        parts = Path(path).parts[1:-1]
        for i in range(len(parts)):
            d = "/" + "/".join(parts[: i + 1])
            if d not in made:
                made.add(d)
                args.extend(["--perms", "0755", "--dir", d])

    args += ["--ro-bind", "/usr", "/usr"]
    for top in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    parents("/etc/x")
    for name in ETC_FILES:
        p = f"/etc/{name}"
        if os.path.lexists(p):
            args += ["--ro-bind", p, p]
    # The scratch tmpfs comes before the interpreter's binds: a venv that lives under /tmp (a CI
    # checkout, say) is then bound on top of the tmpfs instead of being hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(scratch_bytes), "--tmpfs", SANDBOX_HOME]
    made.add(SANDBOX_HOME)
    for p in _python_binds():
        parents(p)
        args += ["--ro-bind", p, p]
        made.add(p)
    if rt is not None:
        parents(SANDBOX_RT)
        args += ["--ro-bind", rt, SANDBOX_RT]
    args += ["--chdir", SANDBOX_HOME]
    return args


def _run_check(cmd: list[str]) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"},
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()[-3:]
        return False, f"exit {proc.returncode}: {' | '.join(tail)}"
    return True, ""


# The interpreter must find its own stdlib: an unprivileged uid that cannot read the prefix makes
# Python silently fall back to another one (e.g. /usr/lib/python3.11), which is not good enough.
_CHECK_CODE = (
    "import json, numpy, os, sys; assert os.getuid() != 0 or os.geteuid() != 0; "
    f"assert sys.base_prefix == {sys.base_prefix!r}, sys.base_prefix; "
    "assert json.__file__.startswith(sys.base_prefix), json.__file__; "
    "open(sys.executable, 'rb').close()"
)


def bwrap_status() -> tuple[bool, str]:
    """(True, "") when bubblewrap can run the worker's interpreter here; else (False, why)."""
    with _probe_lock:
        if "bwrap" not in _probe_cache:
            if not shutil.which("bwrap"):
                _probe_cache["bwrap"] = (False, "bwrap is not installed (Debian: bubblewrap)")
            elif os.geteuid() == 0 and not shutil.which("setpriv"):
                _probe_cache["bwrap"] = (False, "setpriv (util-linux) is missing")
            else:
                inner = _setpriv_args() if os.geteuid() == 0 else []
                cmd = [*_bwrap_args(None, 16 << 20), "--", *inner, _python(), "-s", "-c"]
                ok, why = _run_check([*cmd, _CHECK_CODE])
                _probe_cache["bwrap"] = (ok, "" if ok else f"bwrap does not work here: {why}")
        return _probe_cache["bwrap"]


def _plain_drop() -> tuple[list[str], str]:
    """How to run unprivileged without bwrap: setpriv args and a note on what it costs."""
    with _probe_lock:
        if "plain" not in _probe_cache:
            if os.geteuid() != 0:
                _probe_cache["plain"] = ([], "runs as the grader's own (non-root) user")
            elif not shutil.which("setpriv"):
                _probe_cache["plain"] = (
                    [],
                    "runs as ROOT (setpriv missing): RLIMIT_NPROC does not bind, the code can "
                    "read and write anything",
                )
            elif _run_check([*_setpriv_args(), _python(), "-s", "-c", _CHECK_CODE])[0]:
                _probe_cache["plain"] = (_setpriv_args(), f"runs as uid {NOBODY}")
            elif _run_check([*_setpriv_args(True), _python(), "-s", "-c", _CHECK_CODE])[0]:
                _probe_cache["plain"] = (
                    _setpriv_args(True),
                    f"runs as uid {NOBODY} with CAP_DAC_READ_SEARCH, because the interpreter's "
                    "folder is not readable by that uid: it can READ every file (incl. "
                    "/etc/shadow) but not write outside its scratch folder",
                )
            else:
                _probe_cache["plain"] = (
                    [],
                    f"runs as ROOT (uid {NOBODY} cannot run the interpreter): RLIMIT_NPROC does "
                    "not bind, the code can read and write anything",
                )
        return _probe_cache["plain"]


# --------------------------------------------------------------------------------------------
# Process sweeping


def _marker_pids(marker: str) -> list[int]:
    """Processes whose environment carries this sandbox's marker (a last-resort sweep)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def leftover_processes(marker: str) -> list[int]:
    """Live processes still carrying ``marker`` (tests use this to prove nothing was left)."""
    alive = []
    for pid in _marker_pids(marker):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state != b"Z":
            alive.append(pid)
    return alive


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the worker stopped"
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        why = {
            "SIGKILL": " (memory, CPU time or process limit, or killed)",
            "SIGXCPU": " (CPU time limit)",
            "SIGXFSZ": " (file size limit)",
            "SIGSEGV": " (segmentation fault)",
        }.get(name, "")
        return f"the worker was killed by {name}{why}"
    if code == 127:
        return "the worker could not start (exit 127)"
    if code == 0:
        return "the worker exited with status 0 (did the code call os._exit()?)"
    return f"the worker exited with status {code}"


# --------------------------------------------------------------------------------------------
# The sandbox


class _Worker:
    """One running worker: its launcher process, pipes and output reader."""

    def __init__(self, proc: subprocess.Popen, req_w: int, rep_r: int, life_w: int) -> None:
        self.proc = proc
        self.req_w = req_w
        self.rep_r = rep_r
        self.life_w = life_w
        self.reader: threading.Thread | None = None
        self.out_r = -1


class Sandbox:
    """A lazily started, restartable worker holding one learner's source.

    Use as a context manager; :meth:`request` sends one probe and returns its :class:`Reply` or
    raises :class:`ProbeError`. After a timeout or crash the worker is killed with everything it
    started, and the next request starts (and loads) a fresh one.
    """

    def __init__(
        self,
        source: str,
        *,
        mode: Mode = "auto",
        limits: Limits = Limits(),  # frozen dataclass: safe as a default
        scratch_parent: Path | None = None,
    ) -> None:
        if mode not in ("auto", "bwrap", "none"):
            raise ValueError(f"mode must be auto, bwrap or none, not {mode!r}")
        self.source = source
        self.mode = mode
        self.limits = limits
        self.scratch_parent = scratch_parent
        self.marker = uuid.uuid4().hex
        self.caps = wire.Caps.sized(limits.array_mb << 20)  # one message; an exchange: 2x
        self.load_reply: Reply | None = None
        self.starts = 0
        self._isolation: str | None = None
        self._note = ""
        self._inner: list[str] = []
        self._tmp: Path | None = None
        self._worker: _Worker | None = None
        self._load_failure: ProbeError | None = None
        self._lock = threading.RLock()
        self._out = bytearray()
        self._dropped = 0
        self._out_lock = threading.Lock()
        self._closed = False

    # -- public properties

    @property
    def isolation(self) -> str:
        """Either "bwrap" or "rlimits-only" (decided on first use)."""
        self._decide()
        return self._isolation or "rlimits-only"

    @property
    def isolation_note(self) -> str:
        """What the chosen isolation does and does not protect, in one sentence or two."""
        self._decide()
        return self._note

    @property
    def output(self) -> str:
        """Everything the worker printed (stdout + stderr), capped at ``limits.output_bytes``."""
        with self._out_lock:
            text = bytes(self._out).decode("utf-8", "replace")
            dropped = self._dropped
        if dropped:
            text += f"\n[output truncated: {dropped} more bytes dropped]"
        return text

    @property
    def running(self) -> bool:
        return self._worker is not None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- set-up

    def _decide(self) -> None:
        if self._isolation is not None:
            return
        if self.mode in ("auto", "bwrap"):
            ok, why = bwrap_status()
            if ok:
                self._isolation = "bwrap"
                self._inner = _setpriv_args() if os.geteuid() == 0 else []
                who = f"uid {NOBODY}" if os.geteuid() == 0 else "an unprivileged user namespace"
                self._note = (
                    f"bubblewrap: read-only system, no network, private PID namespace, only "
                    f"worker.py + wire.py from the grader, as {who}, with rlimits"
                )
                return
            if self.mode == "bwrap":
                raise SandboxUnavailable(why)
            prefix = f"bubblewrap unavailable ({why}); "
        else:
            prefix = "mode='none'; "
        self._isolation = "rlimits-only"
        self._inner, how = _plain_drop()
        self._note = (
            prefix + f"rlimits only, the worker {how}; it can see the host file system "
            "(world-readable files such as solutions/ and grader/checks/) and the network"
        )

    def _prepare_tmp(self) -> Path:
        if self._tmp is None:
            parent = str(self.scratch_parent) if self.scratch_parent else None
            tmp = Path(tempfile.mkdtemp(prefix="objloc-sandbox-", dir=parent))
            tmp.chmod(0o711)
            rt = tmp / "rt"
            (rt / "grader").mkdir(parents=True)
            shutil.copyfile(_HERE / "worker.py", rt / "worker.py")
            shutil.copyfile(_HERE / "wire.py", rt / "grader" / "wire.py")
            (rt / "grader" / "__init__.py").write_text("")
            for p in (rt, rt / "grader"):
                p.chmod(0o755)
            for p in (rt / "worker.py", rt / "grader" / "wire.py", rt / "grader" / "__init__.py"):
                p.chmod(0o644)
            scratch = tmp / "scratch"
            scratch.mkdir()
            if os.geteuid() == 0 and self._inner:
                os.chown(scratch, NOBODY, NOBODY)
            scratch.chmod(0o700)
            self._tmp = tmp
        return self._tmp

    def _env(self, home: str) -> dict[str, str]:
        n = str(max(1, self.limits.threads))
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "TMPDIR": home,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_NUM_INTRAOP_THREADS": n,
            "TF_NUM_INTEROP_THREADS": n,
            "OMP_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n,
            "MKL_NUM_THREADS": n,
            "OBJLOC_THREADS": n,
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{home}/.matplotlib",
            "KERAS_HOME": f"{home}/.keras",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "MALLOC_ARENA_MAX": "2",
            MARKER_ENV: self.marker,
        }

    def _rlimits(self) -> list[list[int]]:
        lim = self.limits
        out = [
            [resource.RLIMIT_CPU, lim.cpu_seconds, lim.cpu_seconds + 5],
            [resource.RLIMIT_NPROC, lim.processes, lim.processes],
            [resource.RLIMIT_FSIZE, lim.file_size_mb << 20, lim.file_size_mb << 20],
            [resource.RLIMIT_NOFILE, lim.open_files, lim.open_files],
            [resource.RLIMIT_CORE, 0, 0],
        ]
        if lim.address_space_mb:
            out.append([resource.RLIMIT_AS, lim.address_space_mb << 20, lim.address_space_mb << 20])
        return out

    def _spawn(self) -> None:
        self._decide()
        tmp = self._prepare_tmp()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        life_r, life_w = os.pipe()
        worker_args = [str(req_r), str(rep_w)]
        if self._isolation == "bwrap":
            home = SANDBOX_HOME
            cmd = [
                *_bwrap_args(str(tmp / "rt"), self.limits.scratch_mb << 20),
                "--",
                *self._inner,
                _python(),
                "-s",
                f"{SANDBOX_RT}/worker.py",
                *worker_args,
            ]
        else:
            home = str(tmp / "scratch")
            cmd = [*self._inner, _python(), "-s", str(tmp / "rt" / "worker.py"), *worker_args]
        spec = {
            "lifeline": life_r,
            "close": [req_r, rep_w],
            "rlimits": self._rlimits(),
            "cmd": cmd,
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _LAUNCHER_SRC, json.dumps(spec)],
                pass_fds=(req_r, rep_w, life_r),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                env=self._env(home),
                cwd=home if self._isolation != "bwrap" else "/",
                start_new_session=True,
            )
        finally:
            for fd in (req_r, rep_w, out_w, life_r):
                os.close(fd)
        os.set_blocking(req_w, False)
        worker = _Worker(proc, req_w, rep_r, life_w)
        worker.out_r = out_r
        worker.reader = threading.Thread(
            target=self._drain, args=(out_r,), name="sandbox-output", daemon=True
        )
        worker.reader.start()
        self._worker = worker
        self.starts += 1

    def _drain(self, fd: int) -> None:
        """Keep the first ``output_bytes`` of worker output; keep reading so it never blocks."""
        cap = self.limits.output_bytes
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            with self._out_lock:
                room = cap - len(self._out)
                if room > 0:
                    self._out += chunk[:room]
                self._dropped += max(0, len(chunk) - max(room, 0))

    def _note_output(self, text: str) -> None:
        with self._out_lock:
            if len(self._out) < self.limits.output_bytes:
                self._out += f"\n[sandbox] {text}\n".encode()

    def _stop(self, reason: str | None = None, grace: float = 0.0) -> int | None:
        """Kill the worker and all it started; return the launcher's exit code.

        ``grace``: when the worker has already gone (its pipe closed), give the launcher that long
        to report the worker's own exit status before the sweep turns it into SIGKILL.
        """
        worker, self._worker = self._worker, None
        if worker is None:
            return None
        if grace:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=grace)
        os.close(worker.life_w)  # the launcher sweeps every descendant, then exits
        with contextlib.suppress(OSError):
            os.close(worker.req_w)
        try:
            code = worker.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.proc.pid, signal.SIGKILL)
            code = worker.proc.wait()
        for pid in _marker_pids(self.marker):  # belt and braces: anything that slipped out
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.close(worker.rep_r)
        if worker.reader is not None:
            worker.reader.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(worker.out_r)
        if reason:
            self._note_output(reason)
        return code

    # -- I/O with deadlines

    def _write(self, chunks: list[bytes], deadline: float) -> None:
        assert self._worker is not None
        fd = self._worker.req_w
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Timeout
                _, ready, _ = select.select([], [fd], [], left)
                if not ready:
                    continue
                try:
                    n = os.write(fd, view)
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    raise wire.WireEOF("the worker closed its request pipe") from None
                view = view[n:]

    def _reader(self, deadline: float) -> Callable[[int], bytes]:
        assert self._worker is not None
        fd = self._worker.rep_r

        def read_exact(n: int) -> bytes:
            parts: list[bytes] = []
            left = n
            while left:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout
                ready, _, _ = select.select([fd], [], [], remaining)
                if not ready:
                    continue
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    raise wire.WireEOF("the worker closed its reply pipe")
                parts.append(chunk)
                left -= len(chunk)
            return b"".join(parts)

        return read_exact

    def _exchange(
        self,
        op: str,
        args: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None,
        timeout: float,
        on_message: OnMessage | None,
    ) -> Reply:
        """One request/reply round trip with intermediate messages; kills the worker on failure.

        What the worker sends for this request is bounded (``self.caps``: per message, and in all
        by a ``wire.Meter``) and read only where the protocol expects it, so a flooding worker
        costs the trusted process at most one capped message of memory.
        """
        deadline = time.monotonic() + timeout
        try:
            chunks = wire.encode_message({"op": op, "args": dict(args)}, arrays, self.caps)
        except wire.WireError as exc:
            raise ProbeError("protocol", f"{op}: request not sendable: {exc}") from None
        expected = wire.expected_from_worker(op, talks_back=on_message is not None)
        try:
            self._write(chunks, deadline)
            read_exact = wire.Meter(self._reader(deadline), self.caps.exchange_bytes, op)
            while True:
                header, got = wire.read_message(read_exact, self.caps, expected)
                kind = header.get("kind")
                if kind == "reply":
                    return Reply(header, got)
                if kind == "error":
                    raise ProbeError(
                        str(header.get("error", "protocol")),
                        str(header.get("message", ""))[:4000],
                        str(header.get("traceback", ""))[:8000],
                    )
                if kind == "note":
                    assert on_message is not None  # expected only when the request talks back
                    on_message(header, got)
                    continue
                assert kind == "ask" and on_message is not None
                answer = on_message(header, got)
                if answer is None:
                    out = wire.encode_message(
                        {"kind": "error", "message": f"{op}: nobody answers {header}"[:500]}
                    )
                else:
                    a_header, a_arrays = answer
                    out = wire.encode_message({"kind": "answer", **a_header}, a_arrays, self.caps)
                self._write(out, deadline)
        except _Timeout:
            self._stop(f"{op}: killed after {timeout:g} s without an answer")
            raise ProbeError("timeout", f"{op}: no answer within {timeout:g} s") from None
        except wire.WireEOF:
            code = self._stop(grace=2.0)
            why = _describe_exit(code)
            self._note_output(f"{op}: {why}")
            raise ProbeError("crashed", f"{op}: {why}") from None
        except wire.WireError as exc:
            self._stop(f"{op}: bad message from the worker: {exc}")
            raise ProbeError("protocol", f"{op}: bad message from the worker: {exc}") from None
        except ProbeError:
            raise
        except BaseException:
            self._stop(f"{op}: interrupted on the trusted side")  # e.g. on_message raised
            raise

    def _ensure_loaded(self, timeout: float) -> Reply:
        if self._load_failure is not None:
            f = self._load_failure
            raise ProbeError(f.kind, f.message, f.traceback)
        if self._worker is not None and self.load_reply is not None:
            return self.load_reply
        self._spawn()
        source = np.frombuffer(self.source.encode("utf-8"), dtype=np.uint8)
        try:
            reply = self._exchange("load", {}, {"source": source}, timeout, None)
        except ProbeError as exc:
            if exc.kind == "learner_error":  # raised while loading = the code does not load
                exc = ProbeError("load_error", exc.message, exc.traceback)
            if exc.kind in ("load_error", "timeout", "crashed", "protocol"):
                self._load_failure = ProbeError(
                    exc.kind, f"loading the code: {exc.message}", exc.traceback
                )
                self._stop()
                raise self._load_failure from None
            raise
        self.load_reply = reply
        return reply

    # -- public API

    def start(self, timeout: float | None = None) -> Reply:
        """Start the worker and load the learner source now; returns the load reply."""
        with self._lock:
            if self._closed:
                raise ProbeError("crashed", "the sandbox is closed")
            return self._ensure_loaded(timeout or self.limits.wall_seconds)

    def request(
        self,
        op: str,
        args: Mapping[str, Any] | None = None,
        arrays: Mapping[str, np.ndarray] | None = None,
        *,
        timeout: float,
        on_message: OnMessage | None = None,
    ) -> Reply:
        """Send one probe; ``on_message(header, arrays)`` answers the worker's intermediate asks
        (return ``(header, arrays)``) and sees its notes. Raises ProbeError without a data reply.
        """
        with self._lock:
            if self._closed:
                raise ProbeError("crashed", "the sandbox is closed")
            if op == "load":
                return self._ensure_loaded(timeout)
            self._ensure_loaded(self.limits.wall_seconds)
            return self._exchange(op, args or {}, arrays, timeout, on_message)

    def restart(self) -> None:
        """Stop the worker now; the next request starts a fresh one."""
        with self._lock:
            self._stop("restarted on request")

    def close(self) -> None:
        """Stop the worker and everything it started; remove the private temp dir."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop()
            for pid in _marker_pids(self.marker):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None
