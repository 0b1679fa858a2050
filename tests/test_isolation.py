"""The isolation ladder fails closed, and nothing secret is reachable from a sandbox, however the
grader is installed (issue 10).

Every case runs in each isolation mode that works here and is skipped, with the reason, where it
does not. The install kinds: the one running these tests (the dev venv's editable install) and a
``pip install .``-style venv whose ``site-packages/grader`` holds the hidden checks and the
reference (as on a Dask worker that installed the wheel).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import sandbox
from grader.sandbox import Sandbox, SandboxUnavailable, isolation_status, landlock, paths, preflight

ROOT = Path(__file__).resolve().parents[1]
COURSE_DIR = "assignments/object_localization"  # relative to the checkout or site-packages
COURSE_NAME = Path(COURSE_DIR).name  # its name, chosen: a checkout may install several
FIXTURES = Path(__file__).parent / "fixtures" / "hostile"
CONFINED = [
    pytest.param(m, marks=pytest.mark.skipif(not ok, reason=why))
    for m, (ok, why) in ((m, isolation_status(m)) for m in ("bwrap", "landlock"))
]
LIMITS = sandbox.Limits(address_space_mb=1024, wall_seconds=30, scratch_mb=64)


@pytest.fixture
def fresh_probes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget what was probed, so a changed PATH or kernel answer is seen; restore afterwards."""
    saved = dict(paths._probe_cache)
    paths._probe_cache.clear()
    yield
    paths._probe_cache.clear()
    paths._probe_cache.update(saved)


def _without_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PATH keeps every tool of /usr/bin and /bin except bwrap."""
    bindir = tmp_path / "nobwrap"
    bindir.mkdir()
    for folder in ("/usr/bin", "/bin"):
        for tool in os.listdir(folder):
            if tool != "bwrap" and not (bindir / tool).exists():
                (bindir / tool).symlink_to(Path(folder, tool))
    monkeypatch.setenv("PATH", str(bindir))


def test_auto_refuses_without_any_isolation(
    fresh_probes: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_bwrap(monkeypatch, tmp_path)
    monkeypatch.setattr(landlock, "abi_version", lambda: 0)
    for mode in ("auto", "bwrap", "landlock"):
        with pytest.raises(SandboxUnavailable) as info:
            preflight(mode)  # type: ignore[arg-type]
        assert "apt-get install bubblewrap" in str(info.value)
        assert "--sandbox none" in str(info.value) and "Landlock" in str(info.value)
    with pytest.raises(SandboxUnavailable):
        Sandbox("x = 1\n", mode="auto").isolation  # noqa: B018 - the property decides
    name, note = preflight("none")  # only when asked for, and loudly
    assert name == "none" and "NO ISOLATION" in note and "network" in note


@pytest.mark.skipif(not isolation_status("landlock")[0], reason=isolation_status("landlock")[1])
def test_auto_takes_landlock_when_bwrap_is_missing(
    fresh_probes: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_bwrap(monkeypatch, tmp_path)
    name, note = preflight("auto")
    assert name == "landlock"
    assert "bwrap is not installed" in note and "no TCP" in note
    if os.geteuid() == 0 and "ROOT" in note:  # uid 0 without capabilities: said, never silent
        assert "RLIMIT_NPROC does not bind" in note


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, bwrap, landlock, none"):
        Sandbox("x = 1\n", mode="rlimits")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Nothing secret is reachable


def _install_like_pip(site: Path) -> None:
    """Lay the project out in ``site`` as ``pip install .`` does: the packages with their data
    (the hidden checks and the reference included) and a dist-info whose RECORD lists them.

    Why not ``pip wheel``: the build backend (setuptools >= 77) would have to be downloaded.
    """
    record = []
    for pkg in ("grader", "quiz", "assignments"):
        shutil.copytree(ROOT / pkg, site / pkg, ignore=shutil.ignore_patterns("__pycache__"))
        record += [p.relative_to(site).as_posix() for p in (site / pkg).rglob("*") if p.is_file()]
    info = site / "objloc_course-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.4\nName: objloc-course\nVersion: 0.1.0\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    (info / "top_level.txt").write_text("assignments\ngrader\nquiz\n")
    (info / "INSTALLER").write_text("pip\n")
    record += [f"{info.name}/{n}" for n in ("METADATA", "WHEEL", "top_level.txt", "INSTALLER")]
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in [*record, f"{info.name}/RECORD"]))


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv on the same interpreter with the project installed as a wheel; its dependencies
    come from the dev venv through a ``.pth`` line (nothing is downloaded)."""
    venv = tmp_path_factory.mktemp("wheelvenv") / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # type: ignore[attr-defined]
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _install_like_pip(site)
    venv.chmod(0o755)
    return venv


def _secret_paths(site: Path, seed_file: Path) -> list[str]:
    return [
        str(site / COURSE_DIR / "checks" / "hidden"),
        str(site / COURSE_DIR / "checks" / "hidden" / "test_hidden.py"),
        str(site / COURSE_DIR / "reference.py"),
        str(site / "assignments"),
        str(site / "grader"),
        str(site / "objloc_course-0.1.0.dist-info" / "RECORD"),
        str(ROOT / COURSE_DIR / "checks" / "hidden"),
        str(ROOT / COURSE_DIR / "reference.py"),
        str(ROOT / "solutions"),
        str(ROOT / "solutions" / "object_localization.ipynb"),
        str(seed_file),
        str(seed_file.parent),
        "/etc/shadow",
    ]


# Runs in the interpreter under test: a sandbox lists/reads every path given; prints JSON.
_PROBE = """
import json, sys
from grader import wire
from grader.sandbox import Sandbox, Limits
mode, fixture, paths = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
import os
paths.append(f"/proc/{os.getpid()}/environ")  # the trusted process's environment
src = open(fixture).read()
with Sandbox(src, mode=mode, limits=Limits(address_space_mb=1024, wall_seconds=30)) as sb:
    def call(name, *args):
        tree, arrays = wire.pack([list(args), {}])
        req = {"name": name, "args": tree[0], "kwargs": tree[1]}
        return sb.request("call", req, arrays, timeout=30).value
    out = {p: call("list_dir", p) for p in paths}
    out.update({p + "#read": call("read_files", [p])[p] for p in paths})
    import numpy  # a dependency: readable in every mode
    control = call("read_files", [numpy.__file__])
    print(json.dumps({"isolation": sb.isolation, "out": out, "imported": call("import_reference"),
                      "control": list(control.values())[0]}))
"""


def _leaks(report: dict) -> dict[str, object]:
    """What the sandbox got: any listing with entries, any file read."""
    got = {}
    for path, value in report["out"].items():
        if isinstance(value, list) and value:
            got[path] = value
        elif isinstance(value, str) and value.startswith("READ:"):
            got[path] = value[:60]
    if not report["imported"].startswith("DENIED:"):
        got["import the reference"] = report["imported"]
    return got


def _run_probe(python: str, mode: str, paths: list[str], env: dict[str, str]) -> dict:
    fixture = str(FIXTURES / "read_secrets.py")
    proc = subprocess.run(
        [python, "-c", _PROBE, mode, fixture, json.dumps(paths)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    """A hidden-seed file in a folder a sandbox would otherwise be able to read."""
    path = tmp_path / f"seed-{uuid.uuid4().hex}" / "hidden-seed"
    path.parent.mkdir()
    path.write_text("123456789\n")
    path.parent.chmod(0o755)
    path.chmod(0o644)  # world-readable on purpose: only the sandbox's view may protect it
    return path


@pytest.mark.parametrize("mode", CONFINED)
@pytest.mark.parametrize("install", ["editable", "wheel"])
def test_no_secret_is_reachable(
    mode: str, install: str, request: pytest.FixtureRequest, seed_file: Path
) -> None:
    env = {**os.environ, "GRADER_SECRET_FILE": str(seed_file)}
    env.pop("GRADER_HIDDEN_SEED", None)
    if install == "wheel":
        venv = request.getfixturevalue("wheel_venv")
        python = str(venv / "bin" / "python")
        site = next((venv / "lib").glob("python3*/site-packages"))
        env.pop("PYTHONPATH", None)
        # the trusted side runs the installed package, not this checkout
        expect = str(site / "grader" / "__init__.py")
        where = subprocess.run(
            [python, "-c", "import grader; print(grader.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert where.stdout.strip() == expect, where.stderr
    else:
        python = sys.executable
        site = Path(sysconfig.get_paths()["purelib"])
    report = _run_probe(python, mode, _secret_paths(site, seed_file), env)
    assert report["isolation"] == mode
    assert report["control"].startswith("READ:"), report  # the probe can read what it may
    assert _leaks(report) == {}, report


def test_without_isolation_the_same_probe_leaks(seed_file: Path) -> None:
    """Documents why ``none`` must be explicit: the probe above then reads the secrets."""
    env = {**os.environ, "GRADER_SECRET_FILE": str(seed_file)}
    site = Path(sysconfig.get_paths()["purelib"])
    report = _run_probe(sys.executable, "none", _secret_paths(site, seed_file), env)
    assert report["isolation"] == "none"
    leaks = _leaks(report)
    assert (
        str(seed_file) + "#read" in leaks
        and str(ROOT / COURSE_DIR / "reference.py") + "#read" in leaks
    )


def test_an_installed_grader_finds_its_assignment_and_grades_with_it(
    wheel_venv: Path, tmp_path: Path
) -> None:
    """`pip install .`: the assignment is found beside the installed grader (site-packages), is
    not refused as shown to the sandbox (it is masked there), and grades a notebook."""
    python = str(wheel_venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["GRADER_HIDDEN_SEED"] = "7"
    site = next((wheel_venv / "lib").glob("python3*/site-packages"))
    found = subprocess.run(
        [
            python,
            "-c",
            f"from grader.assignment import resolve; print(resolve({COURSE_NAME!r}).folder)",
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert found.stdout.strip() == str(site / COURSE_DIR), found.stderr
    learner = site / "assignments" / "object_localization.ipynb"  # shipped as package data
    out = tmp_path / "out"
    run = subprocess.run(
        [
            python,
            "-m",
            "grader",
            "grade",
            str(learner),
            "--out",
            str(out),
            "-j",
            "1",
            "--assignment",
            COURSE_NAME,
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (results,) = out.glob("*/results.json")
    document = json.loads(results.read_text())
    assert document["extra_data"]["assignment"] == "object_localization"
    assert document["extra_data"]["status"] == "graded" and document["score"] == 0
    assert document["extra_data"]["isolation"] in ("bwrap", "landlock")
