"""What the importers share: their result, and ids and topics made to fit the bank's patterns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from quiz.model import Question


@dataclass
class ImportResult:
    questions: list[Question] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def slug(text: str, fallback: str, limit: int = 64) -> str:
    """Lower-case id of letters, digits, '.', '_' and '-' that starts with a letter or digit."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")[:limit]
    return s if len(s) >= 2 else fallback


def topic_slug(text: str) -> str:
    return slug(text.replace(".", "-").replace("_", "-"), "imported", limit=40)
