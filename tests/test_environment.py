"""The engine's environment variables: GRADER_ names, the previous names read for one release
with a line on stderr, and the previous release's secret and link files still found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import environment, secret, submit


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_warned", set())
    for variable in environment.ALL:
        monkeypatch.delenv(variable.name, raising=False)
        if variable.old:
            monkeypatch.delenv(variable.old, raising=False)


def test_the_new_name_is_read_silently_and_wins_over_the_old(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRADER_HIDDEN_SEED", "5")
    assert secret.load_hidden_seed() == 5
    monkeypatch.setenv("OBJLOC_HIDDEN_SEED", "6")
    assert secret.load_hidden_seed() == 5
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("variable", [v for v in environment.ALL if v.old], ids=str)
def test_an_old_name_is_still_read_and_says_which_name_replaces_it(
    variable: environment.Variable,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert variable.get() is None
    monkeypatch.setenv(str(variable.old), "12")
    assert variable.get() == "12" and variable.get() == "12"
    err = capsys.readouterr().err
    assert err.count(f"${variable.old} is deprecated") == 1 and f"set ${variable.name}" in err


def test_the_old_names_reach_the_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBJLOC_HIDDEN_SEED", "77")
    assert secret.load_hidden_seed() == 77
    monkeypatch.setenv("OBJLOC_SECRET_FILE", str(tmp_path / "seed"))
    assert secret.secret_path() == tmp_path / "seed"
    monkeypatch.setenv("OBJLOC_LINK", "https://course.example/signin/tok123")
    assert submit.credentials() == submit.Credentials("https://course.example", "tok123")
    assert "$OBJLOC_LINK is deprecated" in capsys.readouterr().err


def test_the_database_url_leaves_the_environment_under_either_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBJLOC_DATABASE_URL", "postgresql://u:pw@db/course")
    monkeypatch.setenv("GRADER_DATABASE_URL", "postgresql://u:pw2@db/course")
    environ = dict(os.environ)
    assert environment.DATABASE_URL.pop(environ) == "postgresql://u:pw2@db/course"
    assert not {"OBJLOC_DATABASE_URL", "GRADER_DATABASE_URL"} & set(environ)


def test_a_course_keeps_the_seed_the_previous_release_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    old = tmp_path / secret.OLD_DATA_FOLDER / "hidden-seed"
    old.parent.mkdir()
    old.write_text("4242\n")
    assert secret.secret_path() == old and secret.load_hidden_seed() == 4242
    assert f"move it to {tmp_path / 'grader' / 'hidden-seed'}" in capsys.readouterr().err
    new = tmp_path / "grader" / "hidden-seed"
    new.parent.mkdir()
    new.write_text("99\n")
    assert secret.secret_path() == new and secret.load_hidden_seed() == 99


def test_a_fresh_course_creates_its_seed_under_the_engines_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    seed = secret.load_hidden_seed()
    assert (tmp_path / "grader" / "hidden-seed").read_text().strip() == str(seed)
    assert not (tmp_path / secret.OLD_DATA_FOLDER).exists()


def test_a_link_saved_by_the_previous_release_is_still_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    old = tmp_path / submit.OLD_LINK_FOLDER / "link"
    old.parent.mkdir()
    old.write_text("https://old.example/signin/abc\n")
    assert submit.credentials().token == "abc"
    assert submit.link_file() == tmp_path / "grader" / "link"
    submit.link_file().parent.mkdir()
    submit.link_file().write_text("https://new.example/signin/def\n")
    assert submit.credentials() == submit.Credentials("https://new.example", "def")


def test_the_readme_names_every_variable() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Environment variables", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{variable.name}`" in section for variable in environment.ALL)
