"""Readable messages for JSON Schema errors: the engine's one way to validate a settings file.

Why: the assignment manifest, the course server's settings and the quiz bank are written by
hand, so each is checked against a JSON Schema (jsonschema, beside the code that reads it) and
every mistake must say where it is and what to write instead, in words an instructor reads without
knowing JSON Schema ("jobs must be at least 1", "unknown setting(s) submision_limit; the known
ones are ..."). A schema may word a message itself: ``"messages": {"minimum": "..."}`` keyed by
the failing keyword, and ``"noun"`` names what an unknown key is ("setting", "hook").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema

_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "empty",
}


def location(path: Iterable[Any]) -> str:
    """``parts[2].kind`` from a path of keys and indexes."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else f".{key}"
    return out.lstrip(".")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_message(error: jsonschema.ValidationError) -> str:
    wanted = error.validator_value
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    if "integer" in wanted and _is_number(error.instance):
        return "should be a whole number"
    if "integer" in wanted or "number" in wanted:
        return f"should be a number, not {error.instance!r}"
    words = " or ".join(_TYPES.get(kind, kind) for kind in wanted)
    return f"should be {words}"


def explain(error: jsonschema.ValidationError) -> str:
    """One error as a sentence that starts with where it is (nothing at the top level)."""
    where = location(error.absolute_path)
    custom = (error.schema.get("messages") or {}).get(error.validator)
    kind, value = error.validator, error.validator_value
    if custom:
        text = custom
    elif kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        noun = error.schema.get("noun", "setting")
        text = f"unknown {noun}(s) {', '.join(map(str, unknown))}; the known ones are {', '.join(known)}"
        return f"{where}: {text}" if where else text
    elif kind == "type":
        text = _type_message(error)
    elif kind == "enum":
        text = "must be one of " + ", ".join(map(str, value))
    elif kind == "minimum":
        text = f"must be at least {value:g}"
    elif kind == "exclusiveMinimum":
        text = "must be positive" if value == 0 else f"must be more than {value:g}"
    elif kind == "maximum":
        text = f"must be at most {value:g}"
    elif kind == "required":
        missing = [name for name in value if name not in error.instance]
        text = "needs " + ", ".join(missing)
    elif kind == "minItems":
        text = f"needs at least {value} item(s)"
    elif kind == "pattern":
        text = f"{error.instance!r} does not match {value}"
    else:
        text = error.message
    return f"{where} {text}" if where else text


def problems(schema: dict[str, Any], data: Any) -> list[str]:
    """Every error of ``data`` against ``schema``, explained, in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [explain(error) for error in errors]
