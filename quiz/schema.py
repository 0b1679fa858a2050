"""JSON Schemas for bank files and the quiz definition.

The schema checks structure (keys, types, the fields each question type needs); `bank.py` adds the
checks a schema cannot express (unique ids, exactly one right option, generators that exist) and maps
every error back to a file, question id and line.
"""

from __future__ import annotations

from typing import Any

from quiz.model import QUESTION_TYPES

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
TOPIC_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"

_text = {"type": "string", "minLength": 1}

_option = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text"],
    "properties": {
        "text": _text,
        "correct": {"type": "boolean"},
        "feedback": {"type": "string"},
    },
}


def _when(qtype: str, then: dict[str, Any]) -> dict[str, Any]:
    """Apply `then` to static (non-generated) questions of one type."""
    return {
        "if": {
            "properties": {"type": {"const": qtype}},
            "required": ["type"],
            "not": {"required": ["generator"]},
        },
        "then": then,
    }


QUESTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "type", "prompt"],
    "properties": {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "topic": {"type": "string", "pattern": TOPIC_PATTERN},
        "type": {"enum": list(QUESTION_TYPES)},
        "prompt": _text,
        "code": _text,
        "options": {"type": "array", "minItems": 2, "maxItems": 10, "items": _option},
        "answer": {"type": ["number", "boolean"]},
        "tolerance": {"type": "number", "minimum": 0},
        "accepted": {"type": "array", "minItems": 1, "items": _text},
        "feedback": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"true": {"type": "string"}, "false": {"type": "string"}},
        },
        "explanation": {"type": "string"},
        "points": {"type": "number", "exclusiveMinimum": 0},
        "shuffle": {"type": "boolean"},
        "generator": {"type": "string", "pattern": r"^[a-z_][a-z0-9_]*$"},
        "params": {"type": "object"},
        "answer_patterns": {"type": "array", "items": _text},
    },
    "allOf": [
        _when("single", {"required": ["options"]}),
        _when("multiple", {"required": ["options"]}),
        _when("code", {"required": ["options", "code"]}),
        _when("truefalse", {"required": ["answer"], "properties": {"answer": {"type": "boolean"}}}),
        _when("numeric", {"required": ["answer"], "properties": {"answer": {"type": "number"}}}),
        _when("fill", {"required": ["accepted"]}),
    ],
}

BANK_FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "quiz bank file",
    "type": "object",
    "additionalProperties": False,
    "required": ["questions"],
    "properties": {
        "topic": {"type": "string", "pattern": TOPIC_PATTERN},
        "questions": {"type": "array", "minItems": 1, "items": QUESTION_SCHEMA},
    },
}

DEFINITION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "quiz definition",
    "type": "object",
    "additionalProperties": False,
    "required": ["quiz"],
    "properties": {
        "quiz": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pools"],
            "properties": {
                "title": _text,
                "questions": {"type": "integer", "minimum": 1},
                "pass_mark": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "attempt_limit": {"type": "integer", "minimum": 1},
                "cooldown": {"type": ["string", "integer"]},
                "pools": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["topics", "draw"],
                        "properties": {
                            "topics": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string", "pattern": TOPIC_PATTERN},
                            },
                            "draw": {"type": "integer", "minimum": 1},
                        },
                    },
                },
            },
        }
    },
}
