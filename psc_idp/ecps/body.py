"""The JSON bodies of the e-CPS device API, checked at the edge before anything reads them:
the size (``MAX_BODY``: 413), the nesting depth before any recursive parsing, strict JSON
(no NaN, no NUL character, no lone surrogate: neither database stores them), then the
endpoint's JSON Schema (types, lengths, patterns, no unknown field). The API is open to
anyone (activation has no credential yet): whatever arrives is a 4xx with an API error,
never a 5xx."""

from __future__ import annotations

import functools
import json
import re

from flask import request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .signed import MAX_TOKEN, EcpsError

MAX_BODY = 8 * 1024
MAX_DEPTH = 4
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

CODE = {"type": "string", "pattern": "^[0-9]{8}$"}
#: a public JWK as an app sends it; ``signed.public_key`` then wants EC P-256 and no ``d``
JWK = {"type": "object", "maxProperties": 12, "propertyNames": {"maxLength": 20},
       "additionalProperties": {"anyOf": [
           {"type": "string", "maxLength": 1024},
           {"type": "array", "maxItems": 8, "items": {"type": "string", "maxLength": 32}}]}}
SCHEMAS = {
    "activation": {
        "type": "object", "additionalProperties": False, "required": ["public_jwk"],
        "properties": {
            "public_jwk": JWK, "label": {"type": "string", "maxLength": 80},
            "qr_secret": {"type": "string", "minLength": 1, "maxLength": 100},
            "id_nat": {"type": "string", "pattern": "^[0-9A-Za-z/-]{1,40}$"},
            "sms_code": CODE, "email_code": CODE}},
    "decision": {
        "type": "object", "additionalProperties": False, "required": ["decision"],
        "properties": {"decision": {"type": "string", "minLength": 1,
                                    "maxLength": MAX_TOKEN}}},
}
#: the two ways to activate: exactly one of them
BY_QR, BY_CODES = {"qr_secret"}, {"id_nat", "sms_code", "email_code"}


def read(schema: str) -> dict:
    """The request's body as the endpoint's ``schema`` describes it."""
    if (request.content_length or 0) > MAX_BODY:
        raise EcpsError("invalid_request", f"the body is larger than {MAX_BODY} bytes", 413)
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise EcpsError("invalid_request", f"the body is larger than {MAX_BODY} bytes", 413)
    value = parse(raw)
    error = best_match(_validator(schema).iter_errors(value))
    if error is not None:
        raise EcpsError("invalid_request", _describe(error))
    if schema == "activation" and not (
            BY_QR <= value.keys() and not BY_CODES & value.keys()
            or BY_CODES <= value.keys() and not BY_QR & value.keys()):
        raise EcpsError("invalid_request", "give qr_secret, or id_nat with sms_code and "
                                           "email_code")
    return value


def depth(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (strings skipped), without recursion."""
    deepest = level = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub(b'""', raw)):
        level += 1 if bracket.group() in (b"[", b"{") else -1
        deepest = max(deepest, level)
    return deepest


def parse(raw: bytes) -> dict:
    if depth(raw) > MAX_DEPTH:
        raise EcpsError("invalid_request", f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise EcpsError("invalid_request", "the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise EcpsError("invalid_request", "the body must be a JSON object")
    if _unstorable(value):
        raise EcpsError("invalid_request", "a string holds a NUL character or a lone "
                                           "surrogate")
    return value


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _unstorable(value) -> bool:
    """A NUL character or a lone surrogate in any key or string (the depth is bounded)."""
    if isinstance(value, str):
        return bool(_UNSTORABLE.search(value))
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def _describe(error) -> str:
    """What is wrong and where, never quoting the value."""
    where = "/".join(str(part)[:40] for part in error.absolute_path) or "body"
    if error.validator == "additionalProperties":
        extra = set(error.instance) - set(error.schema.get("properties", {}))
        return "unknown field(s): " + ", ".join(sorted(name[:40] for name in extra))
    if error.validator == "required":
        return f"{where}: missing " + ", ".join(
            name for name in error.validator_value if name not in error.instance)
    if error.validator == "type":
        return f"{where}: must be {error.validator_value}"
    return f"{where}: does not satisfy {error.validator}"


@functools.cache
def _validator(schema: str):
    return Draft202012Validator(SCHEMAS[schema])
