"""Shared fixtures for the quiz tests: the built-in bank, its definition, a manual clock."""

from __future__ import annotations

import pytest

from quiz.bank import Bank, QuizDefinition, load_bank, load_definition


@pytest.fixture(scope="session")
def bank() -> Bank:
    return load_bank()


@pytest.fixture(scope="session")
def definition(bank: Bank) -> QuizDefinition:
    return load_definition(bank=bank)


class Clock:
    """A clock tests move by hand, so cooldowns need no sleeping."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()
