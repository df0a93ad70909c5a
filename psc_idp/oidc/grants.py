"""Grants of the token endpoint: authorization code (RFC 6749 §4.1 with PKCE RFC 7636
and OIDC Core §3.1) and refresh token (RFC 6749 §6, rotated per RFC 9700 §4.14)."""

from __future__ import annotations

import secrets

from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope
from sqlalchemy import bindparam, func, literal_column, select, update

from ..directory.models import Practitioner
from ..extensions import db
from ..settings import current as settings
from . import fapi, revocation, tokens, transactions
from .consts import TOKEN_AUTH_METHODS
from .errors import printable
from .models import AuthorizationCode, Token, digest, now
from .subject import Subject

TOKEN_AUTH = [*TOKEN_AUTH_METHODS, "none"]


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        """Exact match (RFC 9700 §4.1.3). Authlib quotes an unknown URI in its error
        description unfiltered, which fails on characters RFC 6749 §4.1.2.1 forbids."""
        uri = request.payload.redirect_uri
        if uri and not client.check_redirect_uri(uri):
            raise InvalidRequestError(f"redirect_uri {printable(uri)} is not registered "
                                      "for this client")
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def generate_token(self, **kwargs):
        """Both tokens are signed here, before ``save_token`` writes anything: a key that
        cannot sign (HSM away) leaves no row and holds no lock (the ID token is only
        attached to the response later, by ``PscOpenIDCode``)."""
        token = super().generate_token(**kwargs)
        if is_openid_scope(token.get("scope")):
            token["_id_token"] = tokens.id_token(
                self.request.client, kwargs["user"], token["scope"],
                nonce=self.request.authorization_code.get_nonce(),
                access_token_value=token["access_token"])
        return token

    def save_authorization_code(self, code, request):
        subject: Subject = request.user
        data = request.payload.data
        db.session.add(AuthorizationCode(
            code_hash=digest(code), grant_id=secrets.token_urlsafe(24),
            client_id=request.client.client_id, redirect_uri=request.payload.redirect_uri,
            scope=request.scope, nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method") or None,
            dpop_jkt=data.get("dpop_jkt"),  # RFC 9449 §10, checked by DPoPBinding
            id_nat=subject.id_nat, sid=subject.sid, auth_time=subject.auth_time,
            acr=subject.acr, amr=subject.amr, auth_mode=subject.auth_mode,
            expires_at=now() + fapi.code_lifetime(request.client),
        ))
        transactions.commit()  # with the SSO session it opens, if any: one round trip

    def query_authorization_code(self, code, client):
        """The code, consumed by this request with one conditional statement: marked used
        (its row locked until the token response commits or rolls back: a concurrent use
        waits, then finds it used), read with the practitioner's names. A code already
        used is a replay (RFC 6749 §4.1.2): refused, and what it issued is revoked."""
        current = now()
        row = db.session.connection().execute(CONSUME, {
            "hash": digest(code), "client": client.client_id, "current": current}).first()
        if row is not None:
            return Code(row)
        used = db.session.connection().execute(USED, {"hash": digest(code)}).first()
        if used is not None and used.client_id == client.client_id and \
                used.used_at is not None:
            revocation.revoke_grant(used.grant_id, reason="code_replayed",
                                    client_id=used.client_id)
            db.session.commit()
        return None

    def delete_authorization_code(self, authorization_code):
        """Already marked used (``query_authorization_code``): the token response commits
        it with the tokens (``oidc.views.token``), or a failure leaves it unused."""

    def authenticate_user(self, authorization_code):
        row = authorization_code.row
        return Subject.of(row, grant_id=row.grant_id, names=_names(row))


_code, _token = AuthorizationCode.__table__, Token.__table__


def _name(column, id_nat):
    """The active practitioner's ``column``, read with a code or token row. The row's
    ``id_nat`` is named with its table in so many words: SQLAlchemy writes the columns of
    a RETURNING clause without their table on SQLite, and ``id_nat = id_nat`` would read
    whichever practitioner comes first."""
    row_id_nat = literal_column(f"{id_nat.table.name}.{id_nat.name}")
    return select(column).where(Practitioner.id_nat == row_id_nat,
                                Practitioner.active.is_(True)).scalar_subquery()


def _with_names(statement, id_nat):
    return statement.returning(_name(Practitioner.given_names, id_nat).label("given_names"),
                               _name(Practitioner.family_name, id_nat).label("family_name"))


#: consume an unused, unexpired code of the client
CONSUME = _with_names(update(_code).where(
    _code.c.code_hash == bindparam("hash"), _code.c.client_id == bindparam("client"),
    _code.c.used_at.is_(None), _code.c.expires_at >= bindparam("current"))
    .values(used_at=bindparam("current")).returning(_code), _code.c.id_nat)
USED = select(_code.c.client_id, _code.c.used_at, _code.c.grant_id).where(
    _code.c.code_hash == bindparam("hash"))


def _names(row) -> tuple[str, str]:
    return row.given_names or "", row.family_name or ""


class Code:
    """Authlib's view of the authorization code this request consumed (its row)."""

    def __init__(self, row):
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self):
        return self.row.redirect_uri

    def get_scope(self):
        return self.row.scope

    def get_nonce(self):
        return self.row.nonce

    def get_auth_time(self):
        return self.row.auth_time

    def get_acr(self):
        return self.row.acr

    def get_amr(self):
        return self.row.amr


def reuse_grace(client) -> int:
    """Seconds a rotated refresh token may be presented again: the client's own
    ``refresh_reuse_grace`` or the server's."""
    if client.refresh_reuse_grace is not None:
        return client.refresh_reuse_grace
    return settings().refresh_reuse_grace


class PscCodeChallenge(CodeChallenge):
    """PKCE with S256 only. Required for public clients, and for confidential clients
    whose registration says so (the default)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if data.get("code_challenge_method") == "plain":
            raise InvalidRequestError("PKCE method 'plain' is not accepted: use S256")
        client = grant.request.client
        if not data.get("code_challenge") and (client.require_pkce or fapi.applies(client)):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE S256 is required)")
        if data.get("code_challenge") and not data.get("code_challenge_method"):
            raise InvalidRequestError("Missing 'code_challenge_method' (S256)")
        super().validate_code_challenge(grant, redirect_uri)


class PscOpenIDCode(OpenIDCode):
    def __init__(self):
        super().__init__(require_nonce=False)

    def exists_nonce(self, nonce, request):
        return False  # a nonce is the client's; replay shows up as a replayed code instead

    def encode_id_token(self, token, request):
        return token.pop("_id_token")  # signed with the access token (generate_token)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        """The refresh token, rotated by this request with one conditional statement (its
        row locked until the response commits or rolls back). A rotated token presented
        again within the client's reuse grace (concurrent refreshes of one page load,
        psc.md §10) is answered like its first use; later, it is a replay: the whole chain
        is revoked (RFC 9700 §4.14.2)."""
        if len(refresh_token) > 200:
            return None
        row = db.session.connection().execute(ROTATE, {
            "hash": digest(refresh_token), "current": now()}).first()
        if row is None:
            return None
        if row.refresh_uses > 1 and not _within(reuse_grace(self.request.client),
                                                row.rotated_at):
            revocation.revoke_grant(row.grant_id, reason="refresh_reused",
                                    client_id=row.client_id)
            db.session.commit()
            return None
        return RefreshCredential(row)

    def authenticate_user(self, credential):
        row = credential.row
        return Subject.of(row, grant_id=row.grant_id, names=_names(row))

    def issue_token(self, user, refresh_token):
        """As for the code grant: every signature before the first write."""
        token = super().issue_token(user, refresh_token)
        if is_openid_scope(token.get("scope")):
            token["_id_token"] = tokens.id_token(
                self.request.client, user, token["scope"],
                access_token_value=token["access_token"])
        return token

    def revoke_old_credential(self, credential):
        """Already rotated (``authenticate_refresh_token``), committed with the new token
        (``oidc.views.token``); a reuse within the grace keeps the first rotation's time,
        so the grace never slides."""


#: rotate a live refresh token: the first rotation's time is kept, every presentation
#: counted (``refresh_uses`` above 1: presented again)
ROTATE = _with_names(update(_token).where(
    _token.c.refresh_hash == bindparam("hash"), _token.c.revoked_at.is_(None),
    _token.c.refresh_expires_at >= bindparam("current"))
    .values(rotated_at=func.coalesce(_token.c.rotated_at, bindparam("current")),
            refresh_uses=_token.c.refresh_uses + 1).returning(_token), _token.c.id_nat)


def _within(grace: int, rotated_at: int) -> bool:
    """True while a token rotated at ``rotated_at`` may be presented again (a zero grace:
    never)."""
    return grace > 0 and now() - rotated_at <= grace


class RefreshCredential:
    """Authlib's view of a stored refresh token."""

    def __init__(self, row):
        self.row = row

    def check_client(self, client):
        return client.client_id == self.row.client_id

    def get_scope(self):
        return self.row.scope


def add_id_token_on_refresh(grant, response):
    """OIDC Core §12.2: a refresh may return a new ID token (PSC does)."""
    _, token, _ = response
    if "_id_token" in token:  # signed in RefreshTokenGrant.issue_token
        token["id_token"] = token.pop("_id_token")
