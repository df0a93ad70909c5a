"""Endpoints beside the grants: introspection (RFC 7662), revocation (RFC 7009),
userinfo (OIDC Core §5.3) and RP-initiated logout (OIDC RP-Initiated Logout 1.0)."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749 import InvalidRequestError, TokenValidator
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import Response, jsonify
from flask import request as flask_request

from ..extensions import db, idp
from ..keys import jws
from . import revocation
from .claims import userinfo_claims
from .consts import ACCESS_TOKEN_TYP
from .errors import printable
from .models import Client, LoginSession, Token, digest, now
from .subject import Subject
from .tokens import REFRESH, access_claims

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


class IssuedToken:
    """An access token (verified JWT) or a refresh token, with its database row."""

    def __init__(self, row: Token, kind: str, claims: dict | None = None):
        self.row, self.kind, self.claims = row, kind, claims or {}
        self.scope = row.scope

    def check_client(self, client):
        return client.client_id == self.row.client_id

    def get_scope(self):
        return self.row.scope

    def get_client(self):
        """The client the token was issued to; None once it is deleted."""
        return db.session.get(Client, self.row.client_id)

    def get_user(self):
        return Subject.of(self.row, grant_id=self.row.grant_id)

    def is_expired(self):
        expiry = self.row.access_expires_at if self.kind == "access_token" else (
            self.row.refresh_expires_at or 0)
        return expiry < now()

    def is_revoked(self):
        """Revoked, its SSO session ended, or its client disabled or deleted (refused at
        once, whatever the order of the commits), or a rotated refresh token."""
        if self.row.revoked_at is not None:
            return True
        client = self.get_client()
        if client is None or not client.enabled:
            return True
        session = db.session.get(LoginSession, self.row.sid)
        if session is None or session.ended_at is not None:
            return True
        return self.kind == "refresh_token" and self.row.rotated_at is not None


def find_token(value: str, hint: str | None) -> IssuedToken | None:
    order = ("refresh_token", "access_token") if hint == "refresh_token" else (
        "access_token", "refresh_token")
    for kind in order:
        found = _access(value) if kind == "access_token" else _refresh(value)
        if found:
            return found
    return None


def _access(value: str) -> IssuedToken | None:
    """A live access token of either shape (``tokens``); the jti must be an issued access
    token's, so no other JWT of psc-idp's (an ID token) is ever taken for one."""
    try:
        claims = jws.decode(value, idp().keys.key_set(), typ=(ACCESS_TOKEN_TYP, "JWT"),
                            iss={"essential": True, "value": idp().settings.issuer},
                            exp={"essential": True}, jti={"essential": True})
    except jws.InvalidJWT:
        return None
    row = Token.query.filter_by(jti=claims["jti"]).first()
    return IssuedToken(row, "access_token", claims) if row else None


def _refresh(value: str) -> IssuedToken | None:
    if len(value) > 200:
        return None
    row = Token.query.filter_by(refresh_hash=digest(value)).first()
    return IssuedToken(row, "refresh_token") if row else None


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return not client.is_public  # any authenticated resource server (RFC 7662 §4)

    def introspect_token(self, token: IssuedToken):
        """RFC 7662 §2.2 as PSC answers (psc.md §2): the token's claims plus ``active``,
        ``client_id``, ``username``; ``SubjectNameID`` for access tokens only."""
        row = token.row
        if token.kind == "access_token":
            return {"active": True, **token.claims, "client_id": row.client_id,
                    "username": row.id_nat, "token_type": "Bearer",
                    "SubjectNameID": row.id_nat}
        client = db.session.get(Client, row.client_id)
        claims = access_claims(
            row.client_id, token.get_user(), row.scope, jti=digest(row.refresh_hash)[:32],
            issued=row.issued_at, expires=row.refresh_expires_at, kind=REFRESH,
            psc_shape=client is None or client.access_token_format != "rfc9068")
        return {"active": True, **claims, "client_id": row.client_id, "username": row.id_nat,
                "token_type": "refresh_token"}


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = [*AUTH_METHODS, "none"]

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: IssuedToken, request):
        if token.kind == "refresh_token":
            revocation.revoke_grant(token.row.grant_id, reason="client_revocation",
                                    client_id=token.row.client_id)
        else:
            revocation.revoke_access_token(token.row)
        db.session.commit()


class AccessTokenValidator(TokenValidator):
    TOKEN_TYPE = "bearer"

    def authenticate_token(self, token_string):
        return _access(token_string) if token_string else None

    def validate_token(self, token, scopes, request):
        if token is None or token.is_expired() or token.is_revoked():
            raise InvalidTokenError()


def userinfo_response(token: IssuedToken):
    """OIDC Core §5.3.2: JSON, or a signed JWT when the client registered
    ``userinfo_signed_response_alg``."""
    client = token.get_client()
    claims = userinfo_claims(token.get_user(), token.scope, compat=client.compat)
    if claims is None:
        raise InvalidTokenError(description="the professional is no longer active")
    alg = client.userinfo_signed_response_alg
    if not alg:
        return jsonify(claims)
    issued = now()
    claims |= {"iss": idp().settings.issuer, "aud": client.client_id, "iat": issued,
               "exp": issued + idp().settings.access_token_lifetime}
    return Response(jws.encode(claims, idp().keys.signer(alg)), mimetype="application/jwt")


class UserinfoProtector(ResourceProtector):
    """The access token in the ``Authorization`` header (RFC 6750 §2.1) or in a form body
    (§2.2); both at once, or the body parameter twice, is ``invalid_request`` (§2, §3.1)."""

    def parse_request_authorization(self, request):
        in_body = []
        if flask_request.method == "POST" and \
                flask_request.mimetype == "application/x-www-form-urlencoded":
            in_body = flask_request.form.getlist("access_token")
        if in_body and (len(in_body) > 1 or request.headers.get("Authorization")):
            raise InvalidRequestError("send the access token once: in the Authorization "
                                      "header or in the form body")
        if in_body:
            return self.get_token_validator("bearer"), in_body[0]
        return super().parse_request_authorization(request)


def protector() -> ResourceProtector:
    resource = UserinfoProtector()
    resource.register_token_validator(AccessTokenValidator())
    return resource


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self):
        return idp().keys.jwks()

    def validate_request(self, request):
        """RP-Initiated Logout §3-§4: a ``post_logout_redirect_uri`` that is not registered
        for the client makes the request invalid: refused before anything ends."""
        end = super().validate_request(request)
        wanted = request.payload.data.get("post_logout_redirect_uri")
        if wanted and end.redirect_uri is None:
            who = f"client {end.client.client_id}" if end.client else "the client"
            raise InvalidRequestError(
                f"post_logout_redirect_uri {printable(wanted)} is not registered for {who}: "
                "register it (post_logout_redirect_uris) or omit it")
        return end

    def end_session(self, end_session_request):
        from flask import session

        sid = (end_session_request.id_token_claims or {}).get("sid") or session.get("sid")
        end_sso_session(sid)
        session.pop("sid", None)


def end_sso_session(sid: str | None) -> None:
    """End the browser's SSO session and revoke its tokens (``oidc.revocation``)."""
    revocation.end_session(sid)
    db.session.commit()

