"""The course's hidden-data seed: generated once, private, overridable, never in the source."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from grader import secret

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def seed_file(tmp_path, monkeypatch) -> Path:
    """No override: the seed comes from a file that does not exist yet."""
    monkeypatch.delenv(secret.SEED_ENV, raising=False)
    path = tmp_path / "course" / "hidden-seed"
    monkeypatch.setenv(secret.FILE_ENV, str(path))
    return path


def test_first_use_creates_a_private_file_and_keeps_its_seed(seed_file):
    seed = secret.hidden_seed()
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    assert int(seed_file.read_text()) == seed
    assert secret.hidden_seed() == seed  # read back, not drawn again
    assert [p.name for p in seed_file.parent.iterdir()] == ["hidden-seed"]  # no temp file left


def test_the_environment_overrides_the_file(seed_file, monkeypatch):
    seed_file.parent.mkdir()
    seed_file.write_text("111\n")
    monkeypatch.setenv(secret.SEED_ENV, "222")
    assert secret.hidden_seed() == 222
    monkeypatch.delenv(secret.SEED_ENV)
    assert secret.hidden_seed() == 111


def test_using_seed_wins_inside_and_only_inside(seed_file):
    course = secret.hidden_seed()
    with secret.using_seed(course + 5):
        assert secret.hidden_seed() == course + 5
    assert secret.hidden_seed() == course


@pytest.mark.parametrize("content", ["", "not a number\n", "-4\n", "1.5\n"])
def test_a_malformed_file_is_a_clear_error_naming_it(seed_file, content):
    seed_file.parent.mkdir()
    seed_file.write_text(content)
    with pytest.raises(secret.SecretError, match=str(seed_file)):
        secret.hidden_seed()


def test_a_malformed_override_is_a_clear_error_naming_it(monkeypatch):
    monkeypatch.setenv(secret.SEED_ENV, "seven")
    with pytest.raises(secret.SecretError, match=secret.SEED_ENV):
        secret.hidden_seed()


def test_processes_racing_to_create_the_secret_agree_on_one_seed(seed_file):
    code = "from grader import secret; print(secret.hidden_seed())"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(3):  # several rounds: the window is small
        if seed_file.exists():
            seed_file.unlink()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(8)
        ]
        seeds = {p.communicate(timeout=60)[0].strip() for p in procs}
        assert all(p.returncode == 0 for p in procs)
        assert seeds == {seed_file.read_text().strip()}


def test_the_grader_source_holds_no_seed_constant():
    helpers = (
        ROOT / "assignments" / "object_localization" / "checks" / "hidden" / "helpers.py"
    ).read_text()
    assert "hidden_seed()" in helpers and "HIDDEN_SEED =" not in helpers
