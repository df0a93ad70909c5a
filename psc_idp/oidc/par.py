"""Pushed authorization requests (RFC 9126) and the effective parameters of an
authorization request.

At the PAR endpoint (PSC's path, psc.md §1) a client authenticates as at the token
endpoint and pushes its request, plain or as a request object (RFC 9101); the request is
validated as the authorization endpoint would, errors answered in JSON (RFC 9126 §2.3),
and stored in the database (any process serves the authorization request) under a
``request_uri`` URN that is short-lived (``par_lifetime``), bound to the client and used
once.

At the authorization endpoint, ``effective_request`` turns ``request_uri`` or ``request``
into the parameters Authlib then validates: a pushed request is the whole request
(RFC 9126 §4: parameters outside it are ignored, ``client_id`` must match); a request
object by value takes precedence over the query's parameters (OIDC Core §6.1, as PSC's
Keycloak) or, for a client registered with ``strict_request_objects``, is the whole
request (RFC 9101 §5). A ``request_uri`` is never fetched: only the URNs issued here are
accepted. ``require_pushed_authorization_requests`` (per client, or the setting for all)
refuses any other authorization request (RFC 9126 §5)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import jsonify
from flask import request as flask_request
from sqlalchemy import JSON, BigInteger, String, update
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from .. import audit
from ..extensions import db, idp
from ..settings import current as settings
from . import fapi, request_object
from .consts import PAR_URN, PATHS
from .grants import TOKEN_AUTH
from .models import digest, now

#: what a client may send to authenticate itself: never part of the pushed request
CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")
MAX_REFERENCE = 128


class PushedRequest(db.Model):
    """A pushed authorization request, by the hash of its ``request_uri`` reference."""

    __tablename__ = "oauth_par"

    reference_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class InvalidRequestUriError(OAuth2Error):
    """RFC 9101 §6.2: the ``request_uri`` is unknown, expired, used or not this client's."""

    error = "invalid_request_uri"


#: the end user Authlib's validation sees at the PAR endpoint: who logs in is decided
#: later, at the authorization endpoint (``prompt=none`` is valid in a pushed request)
_NOT_YET = object()


def push():
    """RFC 9126 §2.1-§2.3: 201 with the ``request_uri``, or a JSON error."""
    server = idp().server
    try:
        client = server.authenticate_client(server.create_oauth2_request(None), TOKEN_AUTH,
                                            endpoint="pushed_authorization_request")
        params = _pushed_parameters(flask_request.form, client)
        _validate(params)
    except OAuth2Error as error:
        db.session.rollback()
        return _json_error(error)
    reference, lifetime = secrets.token_urlsafe(32), settings().par_lifetime
    db.session.add(PushedRequest(reference_hash=digest(reference), client_id=client.client_id,
                                 params=params, expires_at=now() + lifetime))
    audit.record("authorization.pushed", client_id=client.client_id)
    db.session.commit()
    response = jsonify(request_uri=PAR_URN + reference, expires_in=lifetime)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def _pushed_parameters(form, client) -> dict:
    """The authorization request in the push: the form without the client's credentials,
    or the request object's parameters only (RFC 9126 §3)."""
    if "request_uri" in form:
        raise InvalidRequestError("request_uri must not be pushed (RFC 9126 section 2.1)")
    if form.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestError("client_id differs from the authenticated client")
    if "request" in form:
        params = request_object.parameters(form["request"], client)
    else:
        params = {k: v for k, v in form.items() if k not in CREDENTIALS}
    return {**params, "client_id": client.client_id}


def _validate(params: dict) -> None:
    """The checks of the authorization endpoint, without its redirections."""
    from . import authorize  # the endpoint's own checks (it imports this module)

    grant = idp().server.get_consent_grant(_as_request(params), end_user=_NOT_YET)
    authorize._check_parameters(grant, grant.request.payload.data)
    authorize._max_age(grant)


def _json_error(error: OAuth2Error):
    """RFC 9126 §2.3: the error as at the token endpoint, never a redirection."""
    error.redirect_uri = None
    status, body, headers = error()
    response = jsonify(dict(body))
    response.status_code = status
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def effective_request(request: Request) -> Request:
    """The authorization request Authlib validates: ``request`` itself, or the pushed
    request its ``request_uri`` names, or the parameters of its request object. Raises
    ``OAuth2Error``; the error redirects only to a redirect URI registered for the
    client named in the query."""
    values = request.values
    client = idp().server.query_client(values.get("client_id"))
    repeated = [name for name in ("request", "request_uri") if len(values.getlist(name)) > 1]
    if repeated:
        raise _refusal(InvalidRequestError, f"Multiple '{repeated[0]}' in request.", values,
                       client)
    if values.get("request_uri") is not None:
        if values.get("request") is not None:
            raise _refusal(InvalidRequestError, "send request or request_uri, not both",
                           values, client)
        try:
            return _as_request(redeem(values["request_uri"], client))
        except OAuth2Error as error:
            raise _refusal(type(error), error.description, values, client) from None
    required = client is not None and (client.require_pushed_authorization_requests or
                                       settings().require_pushed_authorization_requests or
                                       fapi.applies(client))
    if required:
        raise _refusal(InvalidRequestError, "this client must push its authorization "
                       "requests to the PAR endpoint (RFC 9126), then send its request_uri",
                       values, client)
    if values.get("request") is None:
        return request
    if client is None:
        raise InvalidRequestError("client_id: a registered client is required with request")
    try:
        params = request_object.parameters(values["request"], client)
    except OAuth2Error as error:
        raise _refusal(type(error), error.description, values, client) from None
    outer = {} if client.strict_request_objects else \
        {k: v for k, v in values.items() if k != "request"}
    return _as_request({**outer, **params, "client_id": client.client_id})


def redeem(request_uri: str, client) -> dict:
    """The parameters pushed under ``request_uri`` by ``client``, used now: the use is
    committed at once, whatever becomes of this authorization request (RFC 9126 §4)."""
    if not request_uri.startswith(PAR_URN):
        raise InvalidRequestUriError("request_uri must be one the PAR endpoint issued: "
                                     "psc-idp never fetches request_uri URLs")
    reference = request_uri[len(PAR_URN):]
    if client is None or not 0 < len(reference) <= MAX_REFERENCE:
        raise InvalidRequestUriError("unknown request_uri, or client_id is not the client "
                                     "that pushed it")
    table = PushedRequest.__table__
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        used = connection.execute(
            update(table).where(table.c.reference_hash == digest(reference),
                                table.c.client_id == client.client_id,
                                table.c.used_at.is_(None), table.c.expires_at >= now())
            .values(used_at=now()).returning(table.c.params)).first()
    if used is None:
        raise InvalidRequestUriError("this request_uri is unknown, expired, already used or "
                                     "was pushed by another client: push the request again")
    return used.params


def _refusal(kind, description: str, values, client) -> OAuth2Error:
    """``kind`` of error, sent to the query's redirect URI when it is one the client
    registered (a page otherwise)."""
    redirect_uri = values.get("redirect_uri")
    registered = client is not None and redirect_uri and client.check_redirect_uri(redirect_uri)
    return kind(description, redirect_uri=redirect_uri if registered else None)


def _as_request(params: dict) -> Request:
    """``params`` as an authorization request Authlib can validate."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    builder = EnvironBuilder(method="GET", query_string=query,
                             base_url=settings().issuer + PATHS["authorization_endpoint"])
    return Request(builder.get_environ())
