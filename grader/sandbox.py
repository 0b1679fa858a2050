"""Start, talk to and stop the isolated worker that runs learner code.

Why a separate process and this much care: learner code must never decide its own verdict. The
worker (``grader/worker.py``) only ever returns data over the ``grader.wire`` protocol; the checks
run here, in the trusted process. The isolation ladder fails closed (``mode="auto"`` takes the
first rung that works here; :func:`preflight` tells which before grading starts):

* ``bwrap``: bubblewrap with only ``/usr``, a few ``/etc`` files, the interpreter prefix and the
  venv bound read-only, a private copy of ``worker.py`` + ``wire.py`` (so ``grader/reference.py``,
  ``grader/checks/``, ``solutions/`` and result folders do not exist inside), a size-capped tmpfs as
  the only writable place, no network, a private PID namespace, and the worker dropped to its
  slot's own unprivileged uid (``grader/tenancy.py``) with no capabilities (``setpriv``), so
  that ``RLIMIT_NPROC`` and signals stay per submission.
* ``landlock`` (bwrap cannot run; kernel 5.13+): the launcher's child confines itself with
  Landlock (``grader/landlock.py``) before it execs the worker: read/execute only the system
  folders, the interpreter and the dependencies (a private view of site-packages without this
  project's packages), a few ``/etc`` files and its own copy of the worker; write only its scratch
  folder; no TCP (ABI >= 4); no signals or abstract sockets beyond its domain (ABI >= 6); a seccomp
  filter refuses chmod/chown/xattr/utime calls. The worker is its slot's own uid, or, where an
  unprivileged uid cannot run the interpreter, uid 0 with every capability dropped (see :attr:`Sandbox.isolation_note`).
* ``none``: only when asked for explicitly; rlimits and nothing else, said loudly in the note.

With ``mode="auto"`` and neither bwrap nor Landlock, :class:`SandboxUnavailable` says how to fix
it. In every mode the project's own packages in site-packages (the hidden checks, the reference)
and the hidden-seed file are masked or left out, however the grader is installed, and the worker
never holds a capability that lets it read what its uid cannot.

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

from grader import landlock, secret, tenancy, wire
from grader.worker import command as worker_command
from grader.worker import files as worker_files

NOBODY = 65534
SANDBOX_RT = "/sandbox/rt"
SANDBOX_HOME = "/tmp"
MARKER_ENV = "OBJLOC_SANDBOX"
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "nsswitch.conf",
    "localtime",
    "hosts",
    "host.conf",
    "alternatives",
    "ssl",
    "fonts",
    "mime.types",
)
# Not the host's: bwrap binds a passwd/group of the sandbox's own (root, the worker, nobody),
# Landlock mode reads none (the worker finds its name in $USER, its home in $HOME).
USER_DB = ("passwd", "group")
_HERE = Path(__file__).resolve().parent


def _write_user_db(folder: Path, uid: int) -> None:
    """The sandbox's own /etc/passwd and /etc/group, naming the worker's ``uid`` as "sandbox"."""
    folder.mkdir(mode=0o755)
    users = {0: "root", uid: "sandbox", NOBODY: "nobody"}
    (folder / "passwd").write_text(
        "".join(f"{name}:x:{n}:{n}:{name}:/tmp:/usr/sbin/nologin\n" for n, name in users.items())
    )
    (folder / "group").write_text("".join(f"{name}:x:{n}:\n" for n, name in users.items()))
    for name in USER_DB:
        (folder / name).chmod(0o644)


Mode = Literal["auto", "bwrap", "landlock", "none"]
MODES: tuple[Mode, ...] = ("auto", "bwrap", "landlock", "none")
OnMessage = Callable[[dict[str, Any], dict[str, np.ndarray]], Any]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one worker.

    ``address_space_mb`` is RLIMIT_AS: TensorFlow's import maps ~1.5 GB of virtual memory and a small
    training run ~2.7 GB (measured, 2 threads, ``MALLOC_ARENA_MAX=2``), so 4 GB leaves room while a
    memory bomb still fails fast. ``wall_seconds`` bounds worker start + loading the learner code;
    each request has its own timeout. ``processes`` (RLIMIT_NPROC) counts threads too (TF starts
    dozens) and is per uid: as root each concurrent sandbox has its own uid (``grader.tenancy``).

    Per submission (all its processes together, see ``grader.tenancy``): ``memory_mb`` is the
    cgroup memory limit (RSS + its tmpfs scratch + page cache it causes; without a memory cgroup a
    watch of the summed RSS): a training worker stays near 1 GB, so 3 GB leaves room while two
    slots fit a small machine. ``pids`` is the cgroup ``pids.max`` (threads count: launcher,
    bwrap, worker and its TF threads). ``cpu_weight`` is the cgroup v2 ``cpu.weight`` (v1:
    ``cpu.shares`` = weight * 1024 / 100): equal per submission, however many processes it starts.
    ``cgroups=False`` skips the cgroups (the watch and rlimits remain).
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
    memory_mb: int = 3072
    pids: int = 512
    cpu_weight: int = 100
    cgroups: bool = True


class ProbeError(Exception):
    """A probe gave no data reply: kind is timeout, crashed, protocol, learner_error, load_error
    or grader_error (the grader failed, not the submission: no slot or cgroup, EAGAIN starting the
    worker, a worker OOM-killed by pressure from outside its own limits; retried, never a verdict).
    """

    KINDS = frozenset(
        {"timeout", "crashed", "protocol", "learner_error", "load_error", "grader_error"}
    )

    def __init__(self, kind: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind if kind in self.KINDS else "protocol"
        self.message = message
        self.traceback = traceback


class SandboxUnavailable(RuntimeError):
    """The isolation asked for (or, for "auto", any isolation at all) cannot run here."""


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
    fault = spec.get("fault", -1)  # only we write here: a failure of ours, not the worker's

    def grader_fault(kind, exc, tb=None):
        with contextlib.suppress(OSError):
            os.write(fault, f"sandbox launcher: {kind.__name__}: {exc}".encode()[:4000])
        os._exit(125)

    if fault >= 0:
        os.set_inheritable(fault, False)  # closed when the worker execs
        sys.excepthook = grader_fault
    for procs in spec.get("cgroups", []):  # join before forking: every process is inside
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    if spec.get("no_setsid"):  # no cpu cgroup: setsid() would buy CPU (one autogroup per session)
        # seccomp filter, inherited by every descendant: setsid() "succeeds" (returns 0) and does
        # nothing, in every syscall ABI of the machine (x86_64: native, x32, i386; aarch64: native,
        # arm32); the trusted side asks for it only on these machines (tenancy.SECCOMP_ARCHS).
        calls = {
            "x86_64": [(0xC000003E, 112), (0xC000003E, 112 | 0x40000000), (0x40000003, 66)],
            "aarch64": [(0xC00000B7, 157), (0x40000028, 66)],
        }[os.uname().machine]

        class Filter(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte)]
            _fields_ += [("k", ctypes.c_uint)]

        class Prog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

        load, jeq, ret, allow, fake = 0x20, 0x15, 0x06, 0x7FFF0000, 0x00050000
        code = []
        for arch, nr in calls:  # if arch == a and nr == n: fake success; else the next pair
            code += [(load, 0, 0, 4), (jeq, 0, 3, arch), (load, 0, 0, 0), (jeq, 0, 1, nr)]
            code += [(ret, 0, 0, fake)]
        code += [(ret, 0, 0, allow)]
        prog_filters = (Filter * len(code))(*[Filter(*c) for c in code])
        prog = Prog(len(code), prog_filters)
        seccomp = ctypes.CDLL(None, use_errno=True)
        seccomp.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS (needed when not root)
        if seccomp.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            raise OSError(ctypes.get_errno(), "cannot install the setsid filter")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans re-parent to us
    pid = os.fork()
    if pid == 0:
        try:
            os.close(life)
            for res, soft, hard in spec["rlimits"]:
                resource.setrlimit(res, (soft, hard))
            cmd = spec["cmd"]
            if spec.get("confine"):  # confined from here on, and so is everything it execs
                cmd = [*landlock.apply(spec["confine"]), *cmd]
            os.execve(cmd[0], cmd, os.environ)
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


# grader/landlock.py (stdlib only) travels with the launcher as a module built from its source.
_LANDLOCK_MODULE = (
    "import types\nlandlock = types.ModuleType('landlock')\n"
    f"exec({inspect.getsource(landlock)!r}, landlock.__dict__)\n"
)
_LAUNCHER_SRC = (
    _LANDLOCK_MODULE + textwrap.dedent(inspect.getsource(_launcher_main)) + "\n_launcher_main()\n"
).replace("# pragma: no cover - runs in its own interpreter", "")


# --------------------------------------------------------------------------------------------
# Probing what works on this machine (cached per process)

_probe_lock = threading.Lock()
_probe_cache: dict[str, Any] = {}


def _python() -> str:
    """The worker's interpreter: the one running the grader (it has TensorFlow installed)."""
    return sys.executable


def _python_binds() -> list[str]:
    """Folders the interpreter and its packages live in (outside /usr), deduplicated; with the
    site-packages folders a ``.pth`` file may add (its project entries are masked, see
    :func:`_hidden_paths`).
    """
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *_site_dirs()}
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


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _site_dirs() -> list[str]:
    """The site-packages folders the worker's interpreter (run with ``-s``) imports from."""
    import site

    user = os.path.realpath(site.getusersitepackages())
    found = [*site.getsitepackages(), *sys.path]
    out: list[str] = []
    for p in found:
        if not p or os.path.basename(p) not in ("site-packages", "dist-packages"):
            continue
        real = os.path.realpath(p)
        if os.path.isdir(real) and real != user and real not in out:
            out.append(real)
    return out


def _hidden_paths() -> list[str]:
    """Real paths no sandbox may read, whatever the install: this project's entries in
    site-packages (``grader`` with the hidden checks and the reference, ``quiz``, its dist-info,
    an editable install's finder), the project checkout, and the hidden-seed file.
    """
    import importlib.metadata as md

    with _probe_lock:
        if "hidden" in _probe_cache:
            return _probe_cache["hidden"]
    hidden = {str(_HERE), str(_HERE.parent / "solutions")}
    if not any(_under(str(_HERE), s) for s in _site_dirs()):
        hidden.add(str(_HERE.parent))  # a source checkout (editable install): all of it
    for dist in md.distributions():
        tops = set((dist.read_text("top_level.txt") or "").split())
        tops |= {f.parts[0] for f in dist.files or () if f.parts and f.parts[0] != ".."}
        name = (dist.metadata["Name"] or "").lower().replace("-", "_")
        if "grader" not in tops and name != "objloc_course":
            continue
        base = Path(dist.locate_file(""))
        dist_dir = getattr(dist, "_path", None)  # the .dist-info folder (not in its own RECORD)
        for top in tops | ({Path(dist_dir).name} if dist_dir else set()):
            p = base / top
            if os.path.lexists(p):
                hidden.add(os.path.realpath(p))
    seed = secret.secret_path().expanduser()
    hidden |= {os.path.realpath(seed), os.path.realpath(seed.parent)}
    out = sorted(hidden)
    with _probe_lock:
        _probe_cache["hidden"] = out
    return out


# Who the worker is after the drop: the probes check uid 65534, and each sandbox then runs its
# worker as its slot's own uid (tenancy.with_uid), which the tenancy part of the note names.
_UNPRIVILEGED = "an unprivileged uid (the slot's own, see 'per submission')"


def _setpriv_args(reuid: bool = True) -> list[str]:
    """setpriv to uid 65534 without capabilities; with ``reuid=False`` the worker stays uid 0
    but loses every capability for good (empty bounding set, securebits noroot, locked), so it
    can read only what the file modes give uid 0 as an owner, and Landlock confines that.
    """
    who = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if reuid else []
    if not reuid:
        who = ["--securebits=+noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked"]
    return [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        *who,
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
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
    bound = ["/usr"]
    for top in ("/lib", "/lib64", "/bin", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
            bound.append(top)
    parents("/etc/x")
    for name in ETC_FILES:
        p = f"/etc/{name}"
        if os.path.lexists(p):
            args += ["--ro-bind", p, p]
            bound.append(os.path.realpath(p))
    # the host's accounts stay outside: a passwd/group naming only root, the worker and nobody
    user_db = Path(rt).parent / "etc" if rt is not None else None
    for name in USER_DB:
        if user_db is not None and (user_db / name).exists():
            args += ["--ro-bind", str(user_db / name), f"/etc/{name}"]
    # The scratch tmpfs comes before the interpreter's binds: a venv that lives under /tmp (a CI
    # checkout, say) is then bound on top of the tmpfs instead of being hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(scratch_bytes), "--tmpfs", SANDBOX_HOME]
    made.add(SANDBOX_HOME)
    for p in _python_binds():
        parents(p)
        args += ["--ro-bind", p, p]
        made.add(p)
        bound.append(p)
    # Whatever of the project a bound folder holds (site-packages/grader of a `pip install .`,
    # the seed file) is masked: an empty folder, an empty file.
    for h in _hidden_paths():
        if any(_under(h, b) for b in bound) and os.path.lexists(h):
            if os.path.isdir(h):
                args += ["--perms", "0755", "--size", "4096", "--tmpfs", h]
            else:
                args += ["--ro-bind", "/dev/null", h]
    if rt is not None:
        parents(SANDBOX_RT)
        args += ["--ro-bind", rt, SANDBOX_RT]
    args += ["--chdir", SANDBOX_HOME]
    return args


def _readable_beneath(root: str, holes: list[str]) -> list[str]:
    """Paths that cover ``root`` except the ``holes`` (real paths) and what lies beneath them."""
    if not any(_under(h, root) for h in holes):
        return [root]
    if any(_under(root, h) for h in holes) or not os.path.isdir(root):
        return []
    out: list[str] = []
    for name in sorted(os.listdir(root)):
        p = os.path.join(root, name)
        real = os.path.realpath(p)
        if real != p:  # a symlink: its target is covered on its own, unless it leads to a hole
            if not any(_under(h, real) or _under(real, h) for h in holes):
                out.append(real)
            continue
        out += _readable_beneath(p, holes)
    return out


def _landlock_reads() -> tuple[list[str], list[list[str]]]:
    """(read/execute roots, [name, target] links of the private site-packages view), cached."""
    with _probe_lock:
        if "landlock_reads" in _probe_cache:
            return _probe_cache["landlock_reads"]
    hidden = _hidden_paths()
    sites = _site_dirs()
    roots = ["/usr"] + [os.path.realpath(t) for t in ("/lib", "/lib64", "/bin", "/sbin")]
    roots += _python_binds()
    reads: list[str] = []
    for root in dict.fromkeys(r for r in roots if os.path.exists(r)):
        # A venv inside the checkout stays readable (as bwrap binds it): only holes at or
        # beneath a root cut into it, not the checkout that holds it.
        holes = [h for h in hidden + sites if not (_under(root, h) and root != h)]
        reads += _readable_beneath(root, holes)
    links: dict[str, str] = {}
    for site_dir in sites:
        holes = [h for h in hidden if not (_under(site_dir, h) and site_dir != h)]
        for name in sorted(os.listdir(site_dir)):
            real = os.path.realpath(os.path.join(site_dir, name))
            skip = name in links or name == "__pycache__" or name.startswith("__editable__")
            if (
                skip
                or name.endswith((".pth", ".egg-link"))
                or any(_under(real, h) or _under(h, real) for h in holes)
            ):
                continue
            links[name] = real
            reads.append(real)
    out = (reads, [[k, v] for k, v in links.items()])
    with _probe_lock:
        _probe_cache["landlock_reads"] = out
    return out


def _landlock_plan(tmp: Path, prefix: list[str], abi: int) -> dict[str, Any]:
    """What the launcher's child needs to confine the worker of the sandbox folder ``tmp``."""
    reads, links = _landlock_reads()
    rules: list[list[Any]] = [[p, landlock.READ_EXEC] for p in reads]
    rules += [[f"/etc/{name}", landlock.READ] for name in ETC_FILES]
    rules += [["/proc", landlock.READ], ["/sys/devices/system/cpu", landlock.READ]]
    rules += [["/sys/fs/cgroup", landlock.READ], ["/dev/null", landlock.DEV_RW]]
    rules += [[f"/dev/{d}", landlock.READ_FILE] for d in ("zero", "urandom", "random")]
    rules += [[str(tmp / "rt"), landlock.READ_EXEC], [str(tmp / "site"), landlock.READ_EXEC]]
    rules += [[str(tmp / "scratch"), landlock.WRITE_ALL]]
    return {"farm": str(tmp / "site"), "links": links, "rules": rules, "abi": abi, "prefix": prefix}


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
_CHECK_BODY = (
    f"assert sys.base_prefix == {sys.base_prefix!r}, sys.base_prefix; "
    "assert json.__file__.startswith(sys.base_prefix), json.__file__; "
    "open(sys.executable, 'rb').close()"
)
_CHECK_CODE = (
    "import json, numpy, os, sys; assert os.getuid() != 0 or os.geteuid() != 0; " + _CHECK_BODY
)
# uid 0 confined by Landlock: no capability left at all, and the system is not readable.
_CHECK_NOCAPS = (
    "import json, numpy, os, sys\n"
    "st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
    "assert all(int(st[k], 16) == 0 for k in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb')), st\n"
    + _CHECK_BODY
)
_CHECK_CONFINED_ROOT = (
    _CHECK_NOCAPS + "\ntry:\n    os.listdir('/root')\nexcept PermissionError:\n    pass\n"
    "else:\n    raise SystemExit('/root is readable')\n"
)
# Runs a command confined as the launcher's child would be (argv: plan JSON, command...).
_CONFINE_SRC = (
    _LANDLOCK_MODULE
    + "import json, os, sys\n"
    + "cmd = [*landlock.apply(json.loads(sys.argv[1])), *sys.argv[2:]]\n"
    + "os.execv(cmd[0], cmd)\n"
)

_FIX = (
    "install bubblewrap (as root: apt-get install bubblewrap; `./dev grade` does it when it "
    "can), or run on a kernel with Landlock (5.13+, `landlock` in the lsm= boot list), or pass "
    "--sandbox none to grade WITHOUT any isolation"
)


def bwrap_status() -> tuple[bool, str]:
    """(True, "") when bubblewrap can run the worker's interpreter here; else (False, why)."""
    with _probe_lock:
        cached = _probe_cache.get("bwrap")
    if cached is None:
        if not shutil.which("bwrap"):
            cached = (False, "bwrap is not installed (Debian: bubblewrap)")
        elif os.geteuid() == 0 and not shutil.which("setpriv"):
            cached = (False, "setpriv (util-linux) is missing")
        else:
            inner = _setpriv_args() if os.geteuid() == 0 else []
            cmd = [*_bwrap_args(None, 16 << 20), "--", *inner, _python(), "-s", "-c"]
            ok, why = _run_check([*cmd, _CHECK_CODE])
            cached = (ok, "" if ok else f"bwrap does not work here: {why}")
        with _probe_lock:
            _probe_cache["bwrap"] = cached
    return cached


def _landlock_try(inner: list[str], prefix: list[str], abi: int, check: str) -> tuple[bool, str]:
    """Start the interpreter confined as a worker would be, in a throwaway sandbox folder."""
    tmp = Path(tempfile.mkdtemp(prefix="objloc-probe-"))
    try:
        tmp.chmod(0o711)
        (tmp / "rt").mkdir(mode=0o755)
        (tmp / "scratch").mkdir(mode=0o700)
        if inner and os.geteuid() == 0:
            os.chown(tmp / "scratch", NOBODY, NOBODY)
        plan = _landlock_plan(tmp, prefix, abi)
        cmd = [_python(), "-I", "-S", "-c", _CONFINE_SRC, json.dumps(plan)]
        return _run_check([*cmd, *inner, _python(), "-s", "-c", check])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def landlock_status() -> tuple[bool, str, list[str], list[str], str]:
    """(ok, why not, inner command, exec prefix, who the worker runs as) for Landlock mode."""
    with _probe_lock:
        cached = _probe_cache.get("landlock")
    if cached is None:
        abi = landlock.abi_version()
        if abi == 0:
            cached = (False, "the kernel offers no Landlock (needs 5.13+)", [], [], "")
        elif not landlock.seccomp_supported():
            cached = (False, "no seccomp filter for this CPU architecture", [], [], "")
        elif os.geteuid() != 0:
            ok, why = _landlock_try([], [], abi, _CHECK_CODE)
            cached = (ok, why, [], [], "the grader's own (non-root) user")
        elif not shutil.which("setpriv"):
            cached = (False, "setpriv (util-linux) is missing", [], [], "")
        elif _landlock_try(_setpriv_args(), [], abi, _CHECK_CODE)[0]:
            cached = (True, "", _setpriv_args(), [], _UNPRIVILEGED)
        else:
            ok, why = _landlock_try([], _setpriv_args(reuid=False), abi, _CHECK_CONFINED_ROOT)
            who = (
                f"ROOT (uid 0) with every capability dropped for good, because uid {NOBODY} "
                "cannot run the interpreter (its folder is not readable by that uid): "
                "RLIMIT_NPROC does not bind uid 0 and the files uid 0 owns are readable where "
                "Landlock allows reading"
            )
            cached = (ok, why, [], _setpriv_args(reuid=False), who)
        if not cached[0]:
            cached = (False, f"Landlock does not work here: {cached[1]}", [], [], "")
        with _probe_lock:
            _probe_cache["landlock"] = cached
    return cached


def _plain_drop() -> tuple[list[str], list[str], str]:
    """How to run without isolation: (inner command, exec prefix, what it costs).

    Never with a capability: a worker that cannot run as uid 65534 runs as uid 0 with every
    capability dropped (through the exec prefix, so that its scratch folder stays root's), and
    the note says so; where not even that works, grading in this mode is refused.
    """
    with _probe_lock:
        cached = _probe_cache.get("plain")
    if cached is None:
        nocaps = _setpriv_args(reuid=False)
        if os.geteuid() != 0:
            cached = ([], [], "runs as the grader's own (non-root) user")
        elif not shutil.which("setpriv"):
            cached = ([], [], "")
        elif _run_check([*_setpriv_args(), _python(), "-s", "-c", _CHECK_CODE])[0]:
            cached = (_setpriv_args(), [], f"runs as {_UNPRIVILEGED}")
        elif _run_check([*nocaps, _python(), "-s", "-c", _CHECK_NOCAPS])[0]:
            cached = (
                [],
                nocaps,
                f"runs as ROOT without capabilities (uid {NOBODY} cannot run the interpreter): "
                "RLIMIT_NPROC does not bind, it can read and write every file root owns",
            )
        else:
            cached = ([], [], "")
        with _probe_lock:
            _probe_cache["plain"] = cached
    return cached


def preflight(mode: Mode = "auto") -> tuple[str, str]:
    """(isolation, note) that a Sandbox of ``mode`` gets here; raises SandboxUnavailable (with
    how to fix it) when that isolation, or for "auto" any isolation, cannot run. Cached.
    """
    choice = _choose(mode)
    return choice.name, choice.note


def isolation_status(mode: Mode) -> tuple[bool, str]:
    """(True, note) when a Sandbox of ``mode`` can run here, else (False, why and how to fix)."""
    try:
        return True, preflight(mode)[1]
    except SandboxUnavailable as exc:
        return False, str(exc)


@dataclass(frozen=True)
class _Isolation:
    """The rung of the ladder a sandbox runs on, and how its worker is started."""

    name: Literal["bwrap", "landlock", "none"]
    note: str
    inner: tuple[str, ...] = ()  # command before the interpreter (setpriv)
    prefix: tuple[str, ...] = ()  # command the launcher's child execs first (keeps scratch root's)
    abi: int = 0


def _choose(mode: Mode) -> _Isolation:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        inner, prefix, how = _plain_drop()
        if not how:
            raise SandboxUnavailable(
                "--sandbox none: cannot drop the worker's root privileges here (setpriv from "
                "util-linux missing or not working)"
            )
        note = (
            "NO ISOLATION (--sandbox none was asked for): rlimits only; the worker "
            f"{how}; it can read the host file system (world-readable files such as solutions/, "
            "the grader's hidden checks, other submissions) and use the network"
        )
        return _Isolation("none", note, tuple(inner), tuple(prefix))
    why: list[str] = []
    if mode in ("auto", "bwrap"):
        ok, reason = bwrap_status()
        if ok:
            who = _UNPRIVILEGED if os.geteuid() == 0 else "an unprivileged user namespace"
            note = (
                "bubblewrap: read-only system, no network, private PID namespace, only "
                f"worker.py + wire.py from the grader, as {who}, with rlimits"
            )
            return _Isolation("bwrap", note, tuple(_setpriv_args() if os.geteuid() == 0 else []))
        why.append(reason)
    if mode in ("auto", "landlock"):
        ok, reason, inner, prefix, who = landlock_status()
        if ok:
            abi = landlock.abi_version()
            lost = [] if abi >= 4 else ["TCP is NOT blocked (Landlock ABI < 4)"]
            if abi < 6:
                lost.append("signals to other processes of the same uid are NOT blocked (ABI < 6)")
            note = (
                f"Landlock ABI {abi}{' (' + why[0] + ')' if why else ''}: reads only the system, the "
                "interpreter and its dependencies, writes only its scratch folder, no TCP, no "
                f"signals outside its domain, with rlimits, as {who}; other processes are "
                "visible in /proc (no PID namespace)"
            )
            if lost:
                note += "; " + "; ".join(lost)
            return _Isolation("landlock", note, tuple(inner), tuple(prefix), abi)
        why.append(reason)
    raise SandboxUnavailable(
        f"cannot isolate the worker ({'; '.join(why)}). To fix: {_FIX}.",
    )


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


def _copy_worker(rt: Path) -> None:
    """The worker's private copy: its package and the wire (``grader.worker.files``) under ``rt``
    with an empty ``grader/__init__.py``; read-only to the worker (folders 0755, files 0644)."""
    for source, relative in worker_files():
        (rt / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, rt / relative)
    (rt / "grader" / "__init__.py").write_text("")
    for p in [rt, *rt.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


class _Worker:
    """One running worker: its launcher process, pipes and output reader."""

    def __init__(self, proc: subprocess.Popen, req_w: int, rep_r: int, life_w: int) -> None:
        self.proc = proc
        self.req_w = req_w
        self.rep_r = rep_r
        self.life_w = life_w
        self.reader: threading.Thread | None = None
        self.out_r = -1
        self.fault_r = -1


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
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.source = source
        self.mode = mode
        self.limits = limits
        self.scratch_parent = scratch_parent
        self.marker = uuid.uuid4().hex
        self.caps = wire.Caps.sized(limits.array_mb << 20)  # one message; an exchange: 2x
        self.load_reply: Reply | None = None
        self.starts = 0
        self._isolation: str | None = None
        self._choice: _Isolation | None = None
        self._note = ""
        self._inner: list[str] = []
        self._tmp: Path | None = None
        self._worker: _Worker | None = None
        self._load_failure: ProbeError | None = None
        self._lock = threading.RLock()
        self._out = bytearray()
        self._dropped = 0
        self._out_lock = threading.Lock()
        self._read_lock = threading.Lock()  # one reader of the output pipe at a time
        self._closed = False
        self._tenant: tenancy.Tenant | None = None

    # -- public properties

    @property
    def isolation(self) -> str:
        """ "bwrap", "landlock" or "none" (decided on first use; raises SandboxUnavailable)."""
        self._decide()
        return self._isolation or "none"

    @property
    def isolation_note(self) -> str:
        """What the chosen isolation does and does not protect, in one sentence or two."""
        self._decide()
        return self._note + self._tenancy_note()

    @property
    def output(self) -> str:
        """Everything the worker printed (stdout + stderr), capped at ``limits.output_bytes``."""
        self._catch_up()
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
        choice = _choose(self.mode)  # raises SandboxUnavailable: never a silent downgrade
        self._choice = choice
        self._isolation = choice.name
        self._inner = list(choice.inner)
        self._note = choice.note

    def _prepare_tmp(self) -> Path:
        """The private temp dir: a copy of the worker, the scratch folder (size-capped)."""
        tenant = self._ensure_tenant()
        if self._tmp is None:
            parent = str(self.scratch_parent) if self.scratch_parent else None
            tmp = Path(tempfile.mkdtemp(prefix=tenancy.SCRATCH_PREFIX, dir=parent))
            tenant.own_scratch(tmp)
            tmp.chmod(0o711)
            _copy_worker(tmp / "rt")
            scratch = tmp / "scratch"
            scratch.mkdir()
            # the worker's uid: the slot's when it drops to one, else ours (a capability-less
            # root in landlock/none mode must own its scratch, the tmpfs included)
            uid = tenant.uid if os.geteuid() == 0 and self._inner else os.geteuid()
            _write_user_db(tmp / "etc", uid)
            if uid != os.geteuid():
                os.chown(scratch, uid, uid)
            scratch.chmod(0o700)
            if self._isolation != "bwrap":  # bwrap has its own size-capped tmpfs
                tenant.cap_scratch(scratch, self.limits.scratch_mb << 20, uid)
            self._tmp = tmp
        return self._tmp

    def _ensure_tenant(self) -> tenancy.Tenant:
        """This sandbox's share of the machine (uid slot, cgroups); the first one of the process
        also sweeps what dead graders left (stale cgroups and scratch folders)."""
        if self._tenant is None:
            tenancy.sweep_once(self.scratch_parent)
            lim = self.limits
            try:
                self._tenant = tenancy.Tenant(
                    memory_mb=lim.memory_mb,
                    pids=lim.pids,
                    cpu_weight=lim.cpu_weight,
                    cgroups=lim.cgroups,
                )
            except (OSError, tenancy.GraderFault) as exc:
                raise ProbeError("grader_error", f"cannot set up the sandbox: {exc}") from None
        return self._tenant

    def _tenancy_note(self) -> str:
        """What holds per submission (uid, cgroups or watch), appended to the isolation note."""
        if self._closed:
            return ""
        with self._lock:
            return "; " + self._ensure_tenant().note(self._isolation == "bwrap")

    def _worker_inner(self) -> list[str]:
        """``self._inner`` (the privilege drop) with this sandbox's own slot uid instead of 65534."""
        if os.geteuid() != 0 or self._tenant is None:
            return self._inner
        return tenancy.with_uid(self._inner, self._tenant.uid)

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
            "USER": "sandbox",  # getpass.getuser() reads this (Landlock mode reads no passwd)
            "LOGNAME": "sandbox",
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
        fault_r, fault_w = os.pipe()
        tenant = self._tenant
        assert tenant is not None
        worker_args = [str(req_r), str(rep_w)]
        inner = self._worker_inner()
        if self._isolation == "bwrap":
            home = SANDBOX_HOME
            cmd = [
                *_bwrap_args(str(tmp / "rt"), self.limits.scratch_mb << 20),
                "--",
                *inner,
                *worker_command(_python(), SANDBOX_RT, worker_args),
            ]
        else:
            home = str(tmp / "scratch")
            cmd = [*inner, *worker_command(_python(), str(tmp / "rt"), worker_args)]
        spec = {
            "lifeline": life_r,
            "close": [req_r, rep_w],
            "rlimits": self._rlimits(),
            "cmd": cmd,
            "confine": self._confine_spec(tmp),
            "fault": fault_w,
            "cgroups": tenant.cgroups.procs_files if tenant.cgroups else [],
            "no_setsid": tenant.filters_setsid(self._isolation == "bwrap"),
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _LAUNCHER_SRC, json.dumps(spec)],
                pass_fds=(req_r, rep_w, life_r, fault_w),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                env=self._env(home),
                cwd=home if self._isolation != "bwrap" else "/",
                start_new_session=True,
            )
        except OSError as exc:  # EAGAIN/ENOMEM on the trusted side: not the submission's doing
            for fd in (req_w, rep_r, out_r, life_w, fault_r):
                os.close(fd)
            raise ProbeError("grader_error", f"cannot start the sandbox: {exc}") from None
        finally:
            for fd in (req_r, rep_w, out_w, life_r, fault_w):
                os.close(fd)
        os.set_blocking(req_w, False)
        os.set_blocking(fault_r, False)
        worker = _Worker(proc, req_w, rep_r, life_w)
        worker.out_r = out_r
        os.set_blocking(out_r, False)
        worker.fault_r = fault_r
        unwatched_disk = self._isolation != "bwrap" and tenant.scratch_mounted is None
        scratch = tmp / "scratch" if unwatched_disk else None
        tenant.started(proc.pid, scratch, self.limits.scratch_mb << 20)
        worker.reader = threading.Thread(
            target=self._drain, args=(worker,), name="sandbox-output", daemon=True
        )
        worker.reader.start()
        self._worker = worker
        self.starts += 1

    def _confine_spec(self, tmp: Path) -> dict[str, Any] | None:
        """What the launcher's child does before exec: the Landlock plan, or a bare prefix."""
        choice = self._choice
        if choice is None or (choice.name != "landlock" and not choice.prefix):
            return None
        if choice.name != "landlock":
            return {"prefix": list(choice.prefix)}
        return _landlock_plan(tmp, list(choice.prefix), choice.abi)

    def _drain(self, worker: _Worker) -> None:
        """Keep the first ``output_bytes`` of worker output; keep reading so it never blocks."""
        fd = worker.out_r
        while True:
            try:
                select.select([fd], [], [])
            except (OSError, ValueError):
                return
            with self._read_lock:
                # closed by _stop meanwhile: the number may already name another pipe
                if worker.out_r != fd or not self._read_chunk(fd):
                    return

    def _catch_up(self) -> None:
        """Take in what the worker wrote before its last reply and the reader has not yet: the
        output a caller reads after a reply then holds everything printed before it."""
        worker = self._worker
        if worker is None or worker.out_r < 0:
            return
        with self._read_lock:
            try:
                while select.select([worker.out_r], [], [], 0)[0]:
                    if not self._read_chunk(worker.out_r):
                        return
            except (OSError, ValueError):
                return

    def _read_chunk(self, fd: int) -> bool:
        """One non-blocking read into the capped buffer; False at the end of the output."""
        cap = self.limits.output_bytes
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        with self._out_lock:
            room = cap - len(self._out)
            if room > 0:
                self._out += chunk[:room]
            self._dropped += max(0, len(chunk) - max(room, 0))
        return True

    def _note_output(self, text: str) -> None:
        with self._out_lock:
            if len(self._out) < self.limits.output_bytes:
                self._out += f"\n[sandbox] {text}\n".encode()

    def _stop(self, reason: str | None = None, grace: float = 0.0) -> int | None:
        """Kill the worker and all it started; return the launcher's exit code.

        ``grace``: when the worker has already gone (its pipe closed), give the launcher that long
        to report the worker's own exit status before the sweep turns it into SIGKILL; then a
        failure that is the grader's (the launcher's own error, an OOM kill from outside the
        submission's limits) raises ProbeError("grader_error") instead of counting as a crash.
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
        with self._read_lock, contextlib.suppress(OSError):
            fd, worker.out_r = worker.out_r, -1
            os.close(fd)
        fault = b""
        with contextlib.suppress(OSError):
            fault = os.read(worker.fault_r, 4000)
        with contextlib.suppress(OSError):
            os.close(worker.fault_r)
        tenant = self._tenant
        watched = tenant.stopped() if tenant is not None else ""
        outside = tenant.killed_by_grader() if tenant is not None else None
        if reason:
            self._note_output(reason)
        if watched:
            self._note_output(f"killed: {watched}")
        grader_fault = fault.decode("utf-8", "replace") or outside
        if grader_fault:
            self._note_output(f"grader error: {grader_fault}")
            if grace:
                raise ProbeError("grader_error", grader_fault)
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
            tenant, self._tenant = self._tenant, None
            if tenant is not None:  # kills the rest, removes the cgroups, frees the uid slot
                tenant.close(self._tmp)
            elif self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
