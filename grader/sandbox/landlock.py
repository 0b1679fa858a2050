"""Landlock and a small seccomp filter through ctypes: how the worker confines itself without bwrap.

Why this exists: where bubblewrap cannot run (not installed, or a container without user
namespaces), the sandbox launcher's forked child calls :func:`confine` just before it execs the
worker. Landlock domains are inherited across ``execve`` and cannot be lifted, so learner code
starts already confined: it reads and executes only the paths of the ruleset, writes only its
scratch folder, opens no TCP connection and binds no TCP port (ABI >= 4), and, where the kernel
scopes them (ABI >= 6), cannot signal a process or reach an abstract unix socket outside its own
domain (the grader, a concurrent submission's worker). Landlock does not cover ``chmod``,
``chown``, extended attributes or timestamps, so a seccomp filter refuses those system calls:
a worker that still owns files (uid 0 without capabilities owns the system) cannot flip a mode bit.

Stdlib only, and no ``from __future__`` import: the launcher runs this module's source with
``python -I -S -c`` (see ``grader.sandbox.launcher._LAUNCHER_SRC``).
"""

import ctypes
import os
import platform
import stat
import struct

# Syscall numbers of the landlock_* calls are the same on every architecture.
_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2

# File-system rights and the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ = READ_FILE | READ_DIR
READ_EXEC = READ | EXECUTE
DEV_RW = READ_FILE | WRITE_FILE
WRITE_ALL = (
    READ_EXEC | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK
    | MAKE_FIFO | MAKE_SYM | REFER | TRUNCATE
)  # fmt: skip

# System calls that change a file's metadata, which Landlock does not mediate (seccomp: EPERM).
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_METADATA_SYSCALLS = {
    # chmod fchmod fchmodat fchmodat2 chown fchown lchown fchownat setxattr lsetxattr fsetxattr
    # removexattr lremovexattr fremovexattr utime utimes futimesat utimensat setxattrat
    # removexattrat
    "x86_64": (
        *(90, 91, 268, 452, 92, 93, 94, 260, 188, 189, 190, 197, 198, 199, 132, 235, 261, 280),
        *(463, 466),
    ),
    "aarch64": (52, 53, 452, 55, 54, 5, 6, 7, 14, 15, 16, 88, 463, 466),
}


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    v = libc.syscall(
        _SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
    )
    return max(int(v), 0)


def seccomp_supported() -> bool:
    """True where :func:`confine` can install the metadata filter (a known architecture)."""
    return platform.machine() in _AUDIT_ARCH


def handled_fs(abi: int) -> int:
    """Every file-system right this ABI knows: all of them are denied unless a rule allows them."""
    return _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]


def _seccomp_filter() -> None:
    arch = platform.machine()
    nrs = _METADATA_SYSCALLS[arch]
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, errno_eperm, kill = 0x7FFF0000, 0x00050000 | 1, 0x80000000
    prog = [(ld_abs, 0, 0, 4), (jeq, 1, 0, _AUDIT_ARCH[arch]), (ret, 0, 0, kill), (ld_abs, 0, 0, 0)]
    checks = [(jge, 0, 0, 0x40000000)] if arch == "x86_64" else []  # x32 calls: refuse all
    checks += [(jeq, 0, 0, nr) for nr in nrs]
    n = len(checks)
    for i, (code, _, _, k) in enumerate(checks):
        prog.append((code, n - i, 0, k))  # to the EPERM return after the ALLOW one
    prog += [(ret, 0, 0, allow), (ret, 0, 0, errno_eperm)]
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("=HxxxxxxQ", len(prog), ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    libc = _libc()
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, fbuf, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def confine(rules: list, abi: int) -> None:
    """Confine this process (and what it will exec) to ``rules``: ``[[path, rights], ...]``.

    Paths that do not exist are skipped; a rule on a file keeps only the rights a file can have.
    Sets no_new_privs, installs the metadata seccomp filter, then restricts itself. Raises OSError
    on any failure: the caller must not start the worker unconfined.
    """
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    fs = handled_fs(abi)
    attr = struct.pack("=Q", fs)
    if abi >= 4:
        attr += struct.pack("=Q", NET_BIND_TCP | NET_CONNECT_TCP)  # no rule: no TCP at all
    if abi >= 6:
        attr += struct.pack("=Q", SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
    abuf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(_SYS_CREATE, abuf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                allowed = rights & fs
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    allowed &= _FILE_RIGHTS
                rule = struct.pack("=Qi", allowed, fd)
                rbuf = ctypes.create_string_buffer(rule, len(rule))
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rbuf, 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        _seccomp_filter()
        if libc.syscall(_SYS_RESTRICT, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


def apply(plan: dict) -> list:
    """Lay out the plan's private site-packages view, confine this process, return the exec prefix.

    ``plan`` (built by ``landlock_plan``): ``farm`` (a folder of symlinks to the allowed entries
    of site-packages, put first on PYTHONPATH: site-packages itself stays unlistable, so nothing
    else in it can even be named), ``rules``, ``abi`` and ``prefix`` (the command that drops the
    remaining privileges before the worker's interpreter, e.g. setpriv).
    """
    if "rules" not in plan:  # nothing to confine (mode "none"): only the privilege drop
        return list(plan["prefix"])
    farm = plan["farm"]
    os.makedirs(farm, exist_ok=True)
    os.chmod(farm, 0o755)
    for name, target in plan["links"]:
        link = os.path.join(farm, name)
        if not os.path.lexists(link):
            os.symlink(target, link)
    os.environ["PYTHONPATH"] = farm
    confine(plan["rules"], plan["abi"])
    return list(plan["prefix"])
