"""JSON request bodies of the admin API and of dynamic registration (RFC 7591/7592),
checked at the edge before anything reads them: the size (``MAX_CONTENT_LENGTH``: 413), the
nesting depth before any recursive parsing, strict JSON (no NaN, no NUL character, no lone
surrogate: neither database stores them), then the JSON Schema of the OpenAPI document
psc-idp serves (``admin.openapi``): types, ranges, lengths, no unknown field where it says
``additionalProperties: false``."""

from __future__ import annotations

import functools
import json
import re

from flask import request
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from ..clients import RegistrationError
from .openapi import DOCUMENT

MAX_DEPTH = 8
MAX_DESCRIPTION = 300
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: the error code of a body that is not client metadata (RFC 6749 §5.2's)
CODES = {"Rotation": "invalid_request"}


class BodyError(RegistrationError):
    """A refused body: ``invalid_client_metadata`` / ``invalid_redirect_uri`` for client
    metadata (RFC 7591 §3.2.2), ``code`` otherwise."""

    def __init__(self, message: str, field: str = "", code: str | None = None):
        super().__init__(message[:MAX_DESCRIPTION], field)
        self.code = code

    @property
    def error(self) -> str:
        return self.code or super().error


def read(schema: str, *, optional: bool = False):
    """The request's JSON body, checked against the document's ``schema``; an empty body
    is ``{}`` when ``optional``."""
    raw = request.get_data(cache=True)
    code = CODES.get(schema)
    if optional and not raw.strip():
        return {}
    value = parse(raw, code)
    check(value, schema, code)
    return value


def depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (strings skipped), without recursion."""
    deepest = level = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        level += 1 if bracket.group() in (b"[", b"{") else -1
        deepest = max(deepest, level)
    return deepest


def parse(raw: bytes, code: str | None = None):
    if depth(raw) > MAX_DEPTH:
        raise BodyError(f"the body nests deeper than {MAX_DEPTH} levels", code=code)
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BodyError("the body must be a JSON object", code=code) from None
    if not isinstance(value, dict):
        raise BodyError("the body must be a JSON object", code=code)
    _check_strings(value, "", code)
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _check_strings(value, field: str, code: str | None) -> None:
    """No NUL character nor lone surrogate in any key or string (depth is bounded)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise BodyError(f"{field or 'body'}: a string holds a NUL character or a lone "
                            "surrogate", field, code)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, field or key, code)
            _check_strings(item, field or key, code)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, field, code)


def check(value, schema: str, code: str | None = None) -> None:
    error = best_match(_validator(schema).iter_errors(value))
    if error is not None:
        raise BodyError(_describe(error), _field(error), code)


def _describe(error) -> str:
    """What is wrong, naming the field and the rule, never quoting the value (a body may
    hold a key the client should not have sent)."""
    where = "/".join(str(part) for part in error.absolute_path) or "body"
    rule, expected = error.validator, error.validator_value
    if rule == "required":
        return f"{_field(error)}: required"
    if rule == "additionalProperties":
        return "unknown field(s): " + ", ".join(
            sorted(name[:40] for name in _extra(error)))
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


#: JSON Schema's integer, without the floats it would let through (1.0)
_Validator = validators.extend(
    Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)))


@functools.cache
def _validator(schema: str):
    return _Validator({"$ref": f"#/components/schemas/{schema}",
                       "components": DOCUMENT["components"]})
