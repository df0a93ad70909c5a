"""Grants of the token endpoint: authorization code (RFC 6749 §4.1 with PKCE RFC 7636
and OIDC Core §3.1) and refresh token (RFC 6749 §6, rotated per RFC 9700 §4.14)."""

from __future__ import annotations

import secrets

from authlib.oauth2.rfc6749 import InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope

from ..extensions import db
from ..settings import current as settings
from . import revocation, tokens
from .errors import printable
from .models import AuthorizationCode, Token, digest, now
from .subject import Subject

TOKEN_AUTH = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


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
                nonce=self.request.authorization_code.nonce,
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
            id_nat=subject.id_nat, sid=subject.sid, auth_time=subject.auth_time,
            acr=subject.acr, amr=subject.amr, auth_mode=subject.auth_mode,
            expires_at=now() + settings().code_lifetime,
        ))
        db.session.commit()

    def query_authorization_code(self, code, client):
        row = db.session.get(AuthorizationCode, digest(code), with_for_update=True)
        if row is None or row.client_id != client.client_id:
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice is refused and its tokens revoked.
            revocation.revoke_grant(row.grant_id, reason="code_replayed", client_id=row.client_id)
            db.session.commit()
            return None
        if row.expires_at < now():
            return None
        return row

    def delete_authorization_code(self, authorization_code):
        # committed with the tokens once the whole response, ID token included, is built
        # (oidc.views.token): a failure on the way leaves the code unused, nothing issued
        authorization_code.used_at = now()

    def authenticate_user(self, authorization_code):
        return Subject.of(authorization_code, grant_id=authorization_code.grant_id)


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
        if not data.get("code_challenge") and grant.request.client.require_pkce:
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
        """A rotated token presented again within the client's reuse grace (concurrent
        refreshes of one page load, psc.md §10) is answered like its first use; later,
        it is a replay: the whole chain is revoked (RFC 9700 §4.14.2)."""
        if len(refresh_token) > 200:
            return None
        row = Token.query.filter_by(refresh_hash=digest(refresh_token)).with_for_update().first()
        if row is None or row.revoked_at is not None or row.refresh_expires_at < now():
            return None
        if row.rotated_at is not None and not _within(reuse_grace(self.request.client),
                                                      row.rotated_at):
            revocation.revoke_grant(row.grant_id, reason="refresh_reused",
                                    client_id=row.client_id)
            db.session.commit()
            return None
        return RefreshCredential(row)

    def authenticate_user(self, credential):
        return Subject.of(credential.row, grant_id=credential.row.grant_id)

    def issue_token(self, user, refresh_token):
        """As for the code grant: every signature before the first write."""
        token = super().issue_token(user, refresh_token)
        if is_openid_scope(token.get("scope")):
            token["_id_token"] = tokens.id_token(
                self.request.client, user, token["scope"],
                access_token_value=token["access_token"])
        return token

    def revoke_old_credential(self, credential):
        # committed with the new token (oidc.views.token); a reuse within the grace keeps
        # the first rotation's time, so the grace never slides
        if credential.row.rotated_at is None:
            credential.row.rotated_at = now()


def _within(grace: int, rotated_at: int) -> bool:
    """True while a token rotated at ``rotated_at`` may be presented again (a zero grace:
    never)."""
    return grace > 0 and now() - rotated_at <= grace


class RefreshCredential:
    """Authlib's view of a stored refresh token."""

    def __init__(self, row: Token):
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
