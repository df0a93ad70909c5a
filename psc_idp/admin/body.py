"""JSON request bodies of the admin API and of dynamic registration (RFC 7591/7592),
checked at the edge before anything reads them: the size (``MAX_CONTENT_LENGTH``: 413), the
nesting depth before any recursive parsing, strict JSON (no NaN, no NUL character, no lone
surrogate: neither database stores them), then the JSON Schema of the OpenAPI document
psc-idp serves (``admin.openapi``): types, ranges, lengths, no unknown field where it says
``additionalProperties: false``."""

from __future__ import annotations

import functools

from flask import request

from .. import jsonbody
from ..clients import RegistrationError
from .openapi import DOCUMENT

MAX_DEPTH = 8
MAX_DESCRIPTION = 300
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
    try:
        value = jsonbody.parse(raw, MAX_DEPTH)
    except jsonbody.BodyError as exc:
        raise BodyError(str(exc), exc.field, code) from None
    check(value, schema, code)
    return value


def check(value, schema: str, code: str | None = None) -> None:
    try:
        jsonbody.check(value, _validator(schema))
    except jsonbody.BodyError as exc:
        raise BodyError(str(exc), exc.field, code) from None


@functools.cache
def _validator(schema: str):
    return jsonbody.Validator({"$ref": f"#/components/schemas/{schema}",
                               "components": DOCUMENT["components"]})
