"""The JSON bodies of the e-CPS device API, checked at the edge before anything reads them:
the size (``MAX_BODY``: 413), the nesting depth before any recursive parsing, strict JSON
(no NaN, no NUL character, no lone surrogate: neither database stores them), then the
endpoint's JSON Schema (types, lengths, patterns, no unknown field). The API is open to
anyone (activation has no credential yet): whatever arrives is a 4xx with an API error,
never a 5xx."""

from __future__ import annotations

import functools

from .. import jsonbody
from .signed import MAX_TOKEN, EcpsError

MAX_BODY = 8 * 1024
MAX_DEPTH = 4

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
    raw = jsonbody.raw_body(MAX_BODY)
    if raw is None:
        raise EcpsError("invalid_request", f"the body is larger than {MAX_BODY} bytes", 413)
    try:
        value = jsonbody.parse(raw, MAX_DEPTH)
        jsonbody.check(value, _validator(schema))
    except jsonbody.BodyError as exc:
        raise EcpsError("invalid_request", str(exc)) from None
    if schema == "activation" and not (
            BY_QR <= value.keys() and not BY_CODES & value.keys()
            or BY_CODES <= value.keys() and not BY_QR & value.keys()):
        raise EcpsError("invalid_request", "give qr_secret, or id_nat with sms_code and "
                                           "email_code")
    return value


@functools.cache
def _validator(schema: str):
    return jsonbody.Validator(SCHEMAS[schema])
