"""The resource limits of one sandbox, each default declared once with why it is that number.

Why a module of its own: the limits are the one part of the sandbox that callers tune (the batch
jobs, the CLI, the tests), and the rlimits the launcher applies are derived from them here.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Resource limits for one worker.

    ``address_space_mb`` is RLIMIT_AS: TensorFlow's import maps ~1.5 GB of virtual memory and a small
    training run ~2.7 GB (measured, 2 threads, ``MALLOC_ARENA_MAX=2``), so 4 GB leaves room while a
    memory bomb still fails fast. ``wall_seconds`` bounds worker start + loading the learner code;
    each request has its own timeout. ``processes`` (RLIMIT_NPROC) counts threads too (TF starts
    dozens) and is per uid: as root each concurrent sandbox has its own uid (``tenancy``).

    Per submission (all its processes together, see ``tenancy``): ``memory_mb`` is the
    cgroup memory limit (RSS + its tmpfs scratch + page cache it causes; without a memory cgroup a
    watch of the summed RSS): a training worker stays near 1 GB, so 3 GB leaves room while two
    slots fit a small machine. ``pids`` is the cgroup ``pids.max`` (threads count: launcher,
    bwrap, worker and its TF threads). ``cpu_weight`` is the cgroup v2 ``cpu.weight`` (v1:
    ``cpu.shares`` = weight * 1024 / 100): equal per submission, however many processes it starts.
    ``cgroups=False`` skips the cgroups (the watch and rlimits remain).
    """

    address_space_mb: int = 4096  # RLIMIT_AS per process, see above; = batch.DEFAULT_MEMORY_MB
    cpu_seconds: int = 600  # RLIMIT_CPU per process (SIGXCPU); hard limit 5 s above
    processes: int = 256  # RLIMIT_NPROC per uid, see above
    file_size_mb: int = 64  # RLIMIT_FSIZE: the largest file the worker may write (SIGXFSZ)
    open_files: int = 256  # RLIMIT_NOFILE
    wall_seconds: float = 120.0  # worker start + load, see above
    scratch_mb: int = 512  # the only writable folder: bwrap's tmpfs, a mounted tmpfs or the watch
    output_bytes: int = 1 << 20  # captured stdout + stderr kept; the rest is counted, dropped
    threads: int = 2  # TensorFlow/BLAS threads: the same at any -j, or scores would differ
    array_mb: int = 256  # the largest message from the worker (wire.Caps.sized; an exchange 2x)
    memory_mb: int = 3072
    pids: int = 512
    cpu_weight: int = 100
    cgroups: bool = True


def rlimits(lim: Limits) -> list[list[int]]:
    """``[resource, soft, hard]`` triples the launcher's child sets before it execs the worker."""
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
