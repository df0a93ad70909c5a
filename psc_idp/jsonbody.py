"""Strict JSON request bodies, checked at the edge before anything recursive reads them:
the nesting depth (counted without recursion: a body nested 20,000 deep is refused, not a
RecursionError), strict JSON (no NaN or Infinity, no NUL character, no lone surrogate:
neither database stores them), a JSON object; then a JSON Schema whose errors name the field
and the rule, never quote the value (a body may hold what the client should not have sent).
The admin API, dynamic registration and the e-CPS device API read their bodies through it
and turn ``BodyError`` into their own error format."""

from __future__ import annotations

import json
import re

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: JSON Schema's integer without the floats it would let through (1.0)
Validator = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)))


class BodyError(ValueError):
    """A refused body; ``field`` names the top-level field at fault (if one is)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def raw_body(limit: int) -> bytes | None:
    """The current request's body; None when it is larger than ``limit`` bytes, announced
    (``Content-Length``) or sent."""
    from flask import request

    if (request.content_length or 0) > limit:
        return None
    data = request.get_data(cache=True)
    return None if len(data) > limit else data


def depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (strings skipped), without recursion."""
    deepest = level = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        level += 1 if bracket.group() in (b"[", b"{") else -1
        deepest = max(deepest, level)
    return deepest


def parse(raw: bytes, max_depth: int) -> dict:
    """``raw`` as a JSON object, or BodyError."""
    if depth(raw) > max_depth:
        raise BodyError(f"the body nests deeper than {max_depth} levels")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BodyError("the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise BodyError("the body must be a JSON object")
    _check_strings(value, "")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _check_strings(value, field: str) -> None:
    """No NUL character nor lone surrogate in any key or string (the depth is bounded)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise BodyError(f"{field or 'body'}: a string holds a NUL character or a lone "
                            "surrogate", field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, field or key)
            _check_strings(item, field or key)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, field)


def check(value, validator) -> None:
    """BodyError describing the most relevant schema violation, if any."""
    error = best_match(validator.iter_errors(value))
    if error is not None:
        raise BodyError(_describe(error), _field(error))


def _describe(error) -> str:
    where = "/".join(str(part)[:40] for part in error.absolute_path) or "body"
    rule, expected = error.validator, error.validator_value
    if rule == "required":
        return f"{_field(error)}: required"
    if rule == "additionalProperties":
        return "unknown field(s): " + ", ".join(sorted(name[:40] for name in _extra(error)))
    if rule == "type":
        return f"{where}: must be {' or '.join(_listed(expected))}"
    if rule in ("enum", "const"):
        options = expected if rule == "enum" else [expected]
        return f"{where}: must be one of {', '.join(json.dumps(o) for o in options)}"
    if rule in ("oneOf", "anyOf"):
        return f"{where}: not a valid value"
    return f"{where}: {rule} {json.dumps(expected)[:80]}"


def _listed(expected) -> list[str]:
    return expected if isinstance(expected, list) else [expected]


def _extra(error) -> set[str]:
    return set(error.instance) - set(error.schema.get("properties", {}))


def _field(error) -> str:
    if error.absolute_path:
        return str(error.absolute_path[0])
    if error.validator == "required":
        return next((name for name in error.validator_value if name not in error.instance),
                    "")
    if error.validator == "additionalProperties":
        return min(_extra(error), default="")
    return ""
