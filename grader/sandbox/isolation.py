"""The isolation ladder: which rung (bwrap, Landlock, none) runs here, probed once, failing closed.

Why: grading must never silently downgrade. Each rung is probed by really starting the worker's
interpreter the way a sandbox would (``bwrap_status``, ``landlock_status``, ``_plain_drop``);
``mode="auto"`` takes the first that works, and with neither bwrap nor Landlock
:class:`SandboxUnavailable` says how to fix it. ``preflight`` tells which rung (and its note)
before grading starts; ``--sandbox none`` is only ever taken when asked for, and said loudly.
:data:`RUNGS` holds what differs between rungs (probe, command, confinement, note, help), so
that a new isolation is one entry there: the CLI's ``--sandbox``, the server's ``sandbox``
setting and the launcher's confinement all read it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.sandbox import landlock
from grader.sandbox.bwrap import _bwrap_args
from grader.sandbox.errors import SandboxUnavailable
from grader.sandbox.landlock_plan import _landlock_plan
from grader.sandbox.launcher import _CONFINE_SRC
from grader.sandbox.paths import NOBODY, _probe_cache, _probe_lock, _python

#: A ``--sandbox`` choice: "auto" or the name of a rung (:data:`RUNGS`).
Mode = str


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
    tmp = Path(tempfile.mkdtemp(prefix="grader-probe-"))
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

    name: str  # a key of RUNGS
    note: str
    inner: tuple[str, ...] = ()  # command before the interpreter (setpriv)
    prefix: tuple[str, ...] = ()  # command the launcher's child execs first (keeps scratch root's)
    abi: int = 0


def _bwrap(refused: list[str]) -> _Isolation:
    who = _UNPRIVILEGED if os.geteuid() == 0 else "an unprivileged user namespace"
    note = (
        "bubblewrap: read-only system, no network, private PID namespace, only "
        f"the worker package + wire.py + environment.py from the grader, as {who}, with rlimits"
    )
    return _Isolation("bwrap", note, tuple(_setpriv_args() if os.geteuid() == 0 else []))


def _landlock(refused: list[str]) -> _Isolation:
    _, _, inner, prefix, who = landlock_status()
    abi = landlock.abi_version()
    lost = [] if abi >= 4 else ["TCP is NOT blocked (Landlock ABI < 4)"]
    if abi < 6:
        lost.append("signals to other processes of the same uid are NOT blocked (ABI < 6)")
    note = (
        f"Landlock ABI {abi}{' (' + refused[0] + ')' if refused else ''}: reads only the system, "
        "the interpreter and its dependencies, writes only its scratch folder, no TCP, no "
        f"signals outside its domain, with rlimits, as {who}; other processes are "
        "visible in /proc (no PID namespace)"
    )
    if lost:
        note += "; " + "; ".join(lost)
    return _Isolation("landlock", note, tuple(inner), tuple(prefix), abi)


def _none(refused: list[str]) -> _Isolation:
    inner, prefix, how = _plain_drop()
    note = (
        "NO ISOLATION (--sandbox none was asked for): rlimits only; the worker "
        f"{how}; it can read the host file system (world-readable files such as solutions/, "
        "the grader's hidden checks, other submissions) and use the network"
    )
    return _Isolation("none", note, tuple(inner), tuple(prefix))


def _none_status() -> tuple[bool, str]:
    if _plain_drop()[2]:
        return True, ""
    return False, (
        "cannot drop the worker's root privileges here (setpriv from util-linux missing or "
        "not working)"
    )


def _prefix_only(choice: _Isolation, tmp: Path) -> dict[str, Any] | None:
    return {"prefix": list(choice.prefix)} if choice.prefix else None


def _landlock_confinement(choice: _Isolation, tmp: Path) -> dict[str, Any] | None:
    return _landlock_plan(tmp, list(choice.prefix), choice.abi)


@dataclass(frozen=True)
class Rung:
    """One rung of the isolation ladder: everything that differs from one isolation to another.

    ``probe`` says whether it works here (and why not); ``command`` how its worker is started
    and the isolation note results.json carries (given why the rungs above it failed);
    ``confinement`` what the launcher's child does before it execs the worker; ``help`` what
    ``--sandbox`` and the server's ``sandbox`` setting say of it; ``automatic``: ``auto`` may
    take it (never the rung without isolation); ``warning`` is printed whenever it is chosen.
    """

    name: str
    help: str
    automatic: bool
    probe: Callable[[], tuple[bool, str]]
    command: Callable[[list[str]], _Isolation]
    confinement: Callable[[_Isolation, Path], dict[str, Any] | None]
    warning: str = ""


NO_ISOLATION_WARNING = (
    "WARNING: --sandbox none: learner code runs WITHOUT isolation. It can read everything this "
    "user can (the hidden checks, the reference and its data, the solutions), use the network and "
    "touch other gradings. Use it only for notebooks you trust; results.json and the reports say so."
)

#: The ladder, strongest first: the one place that knows the isolations (the CLI's choices and
#: help, the server's settings, the sandbox and its notes read it).
RUNGS: dict[str, Rung] = {
    rung.name: rung
    for rung in (
        Rung(
            "bwrap",
            "bubblewrap: a private, read-only view of the system, no network",
            True,
            bwrap_status,
            _bwrap,
            _prefix_only,
        ),
        Rung(
            "landlock",
            "the worker confines itself with the kernel's Landlock: reads only what it needs, "
            "writes only its scratch, no TCP",
            True,
            lambda: landlock_status()[:2],
            _landlock,
            _landlock_confinement,
        ),
        Rung(
            "none",
            "NO isolation: rlimits only; the code can read the hidden checks and solutions; say "
            "it explicitly, and results.json and the reports say so",
            False,
            _none_status,
            _none,
            _prefix_only,
            NO_ISOLATION_WARNING,
        ),
    )
}
MODES: tuple[str, ...] = ("auto", *RUNGS)


def sandbox_help() -> str:
    """What ``--sandbox`` (and the ``sandbox`` setting) offers, strongest first."""
    rungs = "; ".join(f"{rung.name} ({rung.help})" for rung in RUNGS.values())
    automatic = " nor ".join(name for name, rung in RUNGS.items() if rung.automatic)
    return (
        f"isolation of learner code, strongest first: {rungs}. auto (default) takes the first "
        f"that works here and refuses to grade (exit 2, saying how to fix it) when neither "
        f"{automatic} does; any other refuses when that one does not work"
    )


def _choose(mode: Mode) -> _Isolation:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    ladder = [r for r in RUNGS.values() if r.automatic] if mode == "auto" else [RUNGS[mode]]
    why: list[str] = []
    for rung in ladder:
        ok, reason = rung.probe()
        if ok:
            return rung.command(why)
        why.append(reason)
    if all(not rung.automatic for rung in ladder):
        raise SandboxUnavailable(f"--sandbox {mode}: {'; '.join(why)}")
    raise SandboxUnavailable(
        f"cannot isolate the worker ({'; '.join(why)}). To fix: {_FIX}.",
    )


def confine_spec(choice: _Isolation | None, tmp: Path) -> dict[str, Any] | None:
    """What the launcher's child does before exec: the rung's confinement (None: nothing)."""
    return None if choice is None else RUNGS[choice.name].confinement(choice, tmp)
