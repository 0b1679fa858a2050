"""Settings: defaults declared once, settings.yaml read, unknown keys and bad values refused."""

from __future__ import annotations

import datetime as dt

import pytest

from grader.server.settings import Settings, SettingsError, describe, load_settings


def test_defaults_without_a_file(tmp_path):
    assert load_settings(tmp_path) == Settings()


def test_settings_yaml_is_read(tmp_path):
    (tmp_path / "settings.yaml").write_text(
        "course_title: My course\ndeadline: 2027-01-31T23:59:00+01:00\nsubmissions_per_day: 2\n"
        "feedback_release: manual\nbase_url: https://course.example.org/\n"
    )
    settings = load_settings(tmp_path)
    assert settings.course_title == "My course"
    assert settings.deadline == dt.datetime(2027, 1, 31, 22, 59, tzinfo=dt.UTC)
    assert settings.submissions_per_day == 2
    assert settings.feedback_release == "manual"
    assert settings.base_url == "https://course.example.org"
    assert settings.secure_cookies


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("submision_limit: 3\n", "unknown setting(s) submision_limit; the known ones are"),
        ("feedback_release: later\n", "feedback_release must be one of immediate, manual"),
        ("deadline: 2027-01-31\n", "deadline needs a time"),
        ("deadline: '2027-01-31T10:00:00'\n", "needs a time zone"),
        ("jobs: 0\n", "jobs must be at least 1"),
        ("late_penalty: 2\n", "late_penalty is a fraction"),
        ("cooldown_seconds: soon\n", "cooldown_seconds should be a number"),
        ("- a list\n", "should be a mapping"),
        ("jobs: 1.5\n", "jobs should be a whole number"),
        ("sandbox: chroot\n", "sandbox must be one of auto, bwrap, landlock, none"),
        ("base_url: ftp://x\n", "base_url must start with http:// or https://"),
        ("quiz_time_limit_minutes: 0\n", "quiz_time_limit_minutes should be a positive number"),
        ("course_title: 3\n", "course_title should be text"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(tmp_path, text, message):
    (tmp_path / "settings.yaml").write_text(text)
    with pytest.raises(SettingsError, match=None) as refused:
        load_settings(tmp_path)
    assert message in str(refused.value)


def test_bad_values_are_all_named_at_once(tmp_path):
    (tmp_path / "settings.yaml").write_text("jobs: 0\nlate_penalty: -1\nfeedback_release: x\n")
    with pytest.raises(SettingsError) as refused:
        load_settings(tmp_path)
    for name in ("jobs", "late_penalty", "feedback_release"):
        assert name in str(refused.value)


def test_the_schema_knows_every_setting_and_the_isolation_registrys_rungs():
    """settings.yaml's schema and `grader grade --sandbox` offer what the isolation registry has."""
    from grader.cli import build_parser
    from grader.sandbox.isolation import MODES, RUNGS
    from grader.server.settings import SETTINGS_SCHEMA, known_keys

    assert list(SETTINGS_SCHEMA["properties"]) == known_keys()
    assert SETTINGS_SCHEMA["properties"]["sandbox"]["enum"] == list(MODES) == ["auto", *RUNGS]
    grade = build_parser()._subparsers._group_actions[0].choices["grade"]
    sandbox = next(action for action in grade._actions if action.dest == "sandbox")
    assert list(sandbox.choices) == list(MODES)
    assert all(f"{name} ({rung.help})" in sandbox.help for name, rung in RUNGS.items())


def test_every_setting_says_why():
    rows = describe()
    assert [name for name, _, _ in rows] == [
        f for f in Settings.__dataclass_fields__ if not f.startswith("_")
    ]
    assert all(len(why) > 20 for _, _, why in rows)


def test_the_readme_lists_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running the course server", 1)[1].split("\n## ", 1)[0]
    for name, default, _ in describe():
        assert f"| `{name}` | `{default.strip(chr(39))}` |" in section, name
