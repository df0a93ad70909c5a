"""Tokens psc-idp issued, read back for introspection (RFC 7662), revocation (RFC 7009)
and userinfo (RFC 6750): one statement per lookup — the token's row with the state of its
SSO session, and for userinfo the professional's stored claims (``directory.document``) —
and the client from the process's cache (``clients.cache``)."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from ..clients import cache as clients
from ..directory.document import decode
from ..directory.models import ProfessionalDocument
from ..extensions import idp
from ..keys import jws
from . import transactions
from .consts import ACCESS_TOKEN_TYP
from .models import LoginSession, Token, digest, now
from .subject import Subject

_token, _session = Token.__table__, LoginSession.__table__
#: a token's row and its SSO session's (``session_sid`` None: no such session)
_READ = select(_token, _session.c.sid.label("session_sid"),
               _session.c.ended_at.label("session_ended_at")).outerjoin(
    _session, _session.c.sid == _token.c.sid)
BY_JTI = _READ.where(_token.c.jti == bindparam("key"))
BY_REFRESH_HASH = _READ.where(_token.c.refresh_hash == bindparam("key"))
_document = ProfessionalDocument.__table__
#: an access token's row with its professional's stored claims (None: no longer active)
WITH_DOCUMENT = BY_JTI.add_columns(_document.c.claims.label("document")).outerjoin(
    _document, _document.c.id_nat == _token.c.id_nat)


class IssuedToken:
    """An access token (verified JWT) or a refresh token, with its database row."""

    def __init__(self, row, kind: str, claims: dict | None = None):
        self.row, self.kind, self.claims = row, kind, claims or {}
        self.scope = row.scope

    def check_client(self, client):
        return client.client_id == self.row.client_id

    def get_scope(self):
        return self.row.scope

    def get_client(self):
        """The client the token was issued to; None once it is deleted."""
        return clients.find(self.row.client_id)

    def get_user(self):
        return Subject.of(self.row, grant_id=self.row.grant_id)

    def document(self) -> dict | None:
        """The professional's stored ``scope_all`` claims (``directory.document``), read
        with the token (``access(…, document=True)``); None once they are no longer
        active."""
        text = self.row.document
        return None if text is None else decode(text)

    def is_expired(self):
        expiry = self.row.access_expires_at if self.kind == "access_token" else (
            self.row.refresh_expires_at or 0)
        return expiry < now()

    def is_revoked(self):
        """Revoked, its SSO session ended, or its client disabled or deleted (refused
        whatever the order of the commits; a client changed in another process within a
        second), or a rotated refresh token."""
        row = self.row
        if row.revoked_at is not None or row.session_sid is None or \
                row.session_ended_at is not None:
            return True
        client = self.get_client()
        if client is None or not client.enabled:
            return True
        return self.kind == "refresh_token" and row.rotated_at is not None


def find_token(value: str, hint: str | None) -> IssuedToken | None:
    order = ("refresh_token", "access_token") if hint == "refresh_token" else (
        "access_token", "refresh_token")
    for kind in order:
        found = access(value) if kind == "access_token" else _refresh(value)
        if found:
            return found
    return None


def access(value: str, document: bool = False) -> IssuedToken | None:
    """A live access token of either shape (``tokens``); the jti must be an issued access
    token's, so no other JWT of psc-idp's (an ID token) is ever taken for one.
    ``document``: read the professional's stored claims with it (userinfo)."""
    try:
        claims = jws.decode(value, idp().keys.key_set(), typ=(ACCESS_TOKEN_TYP, "JWT"),
                            iss={"essential": True, "value": idp().settings.issuer},
                            exp={"essential": True}, jti={"essential": True})
    except jws.InvalidJWT:
        return None
    if not isinstance(claims["jti"], str):
        return None
    row = _read(WITH_DOCUMENT if document else BY_JTI, claims["jti"])
    return IssuedToken(row, "access_token", claims) if row else None


def _refresh(value: str) -> IssuedToken | None:
    if len(value) > 200:
        return None
    row = _read(BY_REFRESH_HASH, digest(value))
    return IssuedToken(row, "refresh_token") if row else None


def _read(statement, key: str):
    return transactions.connection().execute(statement, {"key": key}).first()
