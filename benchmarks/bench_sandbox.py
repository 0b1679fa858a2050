"""Sandbox start-up overhead: worker start, and worker start + `import tensorflow` inside it,
against a bare `python -c "import tensorflow"`. Medians of several runs, printed as ratios
(timings on this machine vary by +-25% between runs, so compare within one run).

    .venv/bin/python benchmarks/bench_sandbox.py [--runs 5] [--mode auto|bwrap|none]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.sandbox import Sandbox


def _median(fn: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bare_import() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [sys.executable, "-c", "import tensorflow"], check=True, env=env, capture_output=True
    )


def sandbox_start(mode: str, modules: list[str]) -> Callable[[], None]:
    def run() -> None:
        with Sandbox("x = 1\n", mode=mode) as sb:  # type: ignore[arg-type]
            sb.start()
            if modules:
                sb.request("import", {"modules": modules}, timeout=120)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", default="auto", choices=["auto", "bwrap", "none"])
    opts = parser.parse_args()
    probe = Sandbox("x = 1\n", mode=opts.mode)  # type: ignore[arg-type]
    print(f"isolation: {probe.isolation} ({probe.isolation_note})")
    probe.close()
    sandbox_start(opts.mode, [])()  # warm caches (bwrap check, page cache)
    bare = _median(bare_import, opts.runs)
    start = _median(sandbox_start(opts.mode, []), opts.runs)
    start_tf = _median(sandbox_start(opts.mode, ["tensorflow"]), opts.runs)
    print(f"median of {opts.runs} runs")
    print(f"  bare python -c 'import tensorflow' : {bare:6.2f} s")
    print(f"  sandbox start + load (no TF)       : {start:6.2f} s  ({start / bare:.2f}x bare TF)")
    print(f"  sandbox start + load + import TF   : {start_tf:6.2f} s  ({start_tf / bare:.2f}x)")
    print(f"  overhead of the sandbox on TF start: {start_tf - bare:+6.2f} s")
    print("  (bare includes interpreter shutdown; the sandbox SIGKILLs its worker, so no teardown)")


if __name__ == "__main__":
    main()
