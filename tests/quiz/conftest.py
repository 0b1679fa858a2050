"""Shared fixtures for the quiz tests: the shipped course's quiz (its bank, definition and
generators, through the assignment's quiz/ folder and quiz_generators hook), a manual clock."""

from __future__ import annotations

import pytest

from quiz.bank import Bank, QuizDefinition
from quiz.source import QuizSource, quiz_of

COURSE = "object_localization"


@pytest.fixture(scope="session")
def source() -> QuizSource:
    found = quiz_of(COURSE)
    assert found is not None, "the shipped course has a quiz"
    return found


@pytest.fixture(scope="session")
def loaded(source: QuizSource) -> tuple[Bank, QuizDefinition]:
    return source.load()


@pytest.fixture(scope="session")
def bank(loaded) -> Bank:
    return loaded[0]


@pytest.fixture(scope="session")
def definition(loaded) -> QuizDefinition:
    return loaded[1]


class Clock:
    """A clock tests move by hand, so cooldowns need no sleeping (aware UTC, as the store's)."""

    def __init__(self) -> None:
        import datetime as dt

        self.now = dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        import datetime as dt

        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()
