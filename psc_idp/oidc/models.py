"""Protocol state kept in the database (shared by every IdP process): clients,
authorization codes, issued tokens, SSO sessions, login transactions, the jtis of client
assertions and DPoP proofs. Times are epoch seconds. Secrets, codes and refresh tokens
are stored as SHA-256 hashes: they are 256-bit random values, so a fast hash is enough
and a leak of the table reveals nothing usable."""

from __future__ import annotations

import hmac

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import digest, now
from ..extensions import db
from ..replay import AssertionJti  # noqa: F401 (its table is the protocol's too)
from .consts import CIBA_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE


class ClientRules(ClientMixin):
    """Authlib's view of a client (``ClientMixin``), computed from its attributes only:
    shared by the stored row and the copy protocol requests read (``clients.cache``)."""

    __slots__ = ()

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def client_metadata(self) -> dict:
        meta = {"userinfo_signed_response_alg": self.userinfo_signed_response_alg,
                "post_logout_redirect_uris": list(self.post_logout_redirect_uris or [])}
        return {k: v for k, v in meta.items() if v}

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # redirect_uri is always required: exact match, no default

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        if not self.secret_hash or not client_secret:
            return False
        given = digest(client_secret)
        if hmac.compare_digest(self.secret_hash, given):
            return True
        return bool(self.previous_secret_hash and (self.previous_secret_expires_at or 0) > now()
                    and hmac.compare_digest(self.previous_secret_hash, given))

    def check_endpoint_auth_method(self, method, endpoint):
        """The registered method; a secret may come by either secret method unless the
        client is strict (PSC's Keycloak accepts both, psc.md §10)."""
        if method == self.token_endpoint_auth_method:
            return True
        secret_methods = ("client_secret_basic", "client_secret_post")
        return not self.strict_client_auth and method in secret_methods and \
            self.token_endpoint_auth_method in secret_methods

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        if grant_type == CIBA_GRANT_TYPE:
            return self.backchannel_token_delivery_mode is not None
        if grant_type == TOKEN_EXCHANGE_GRANT_TYPE:
            return bool(self.token_exchange_audiences)
        return grant_type in self.grant_types


class Client(db.Model, ClientRules):
    __tablename__ = "oauth_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    jwks: Mapped[dict | None] = mapped_column(JSON)
    scope: Mapped[str] = mapped_column(String(400), default="openid scope_all")
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    userinfo_signed_response_alg: Mapped[str | None] = mapped_column(String(10))
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=False)
    #: refuse a client that presents its credentials with a second method (RFC 6749 §2.3)
    #: or with another method than ``token_endpoint_auth_method``
    strict_client_auth: Mapped[bool] = mapped_column(Boolean, default=False,
                                                     server_default=false())
    #: "psc" (``typ: JWT``, Keycloak's claims, as PSC) or "rfc9068" (``typ: at+jwt``)
    access_token_format: Mapped[str] = mapped_column(String(10), default="psc",
                                                     server_default="psc")
    #: seconds a rotated refresh token may be presented again (None: the global setting)
    refresh_reuse_grace: Mapped[int | None] = mapped_column(Integer)
    compat: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    updated_at: Mapped[int | None] = mapped_column(BigInteger)
    #: after a secret rotation, the previous secret works until this time
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    contacts: Mapped[list] = mapped_column(JSON, default=list)
    #: how it was registered: cli, admin-api or dynamic (RFC 7591)
    registered_by: Mapped[str] = mapped_column(String(20), default="cli")
    #: RFC 7592 registration access token (hash), for dynamically registered clients
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))
    #: OIDC Back-Channel Logout 1.0 §2.2: where logout tokens are POSTed (None: not sent)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false())
    #: CIBA Core §4: poll or ping (None: the client may not use CIBA)
    backchannel_token_delivery_mode: Mapped[str | None] = mapped_column(String(10))
    #: CIBA Core §4: where ping-mode notifications are POSTed
    backchannel_client_notification_endpoint: Mapped[str | None] = mapped_column(Text)
    #: RFC 9449 §5.2: every token request must carry a DPoP proof (DPoP-bound tokens)
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false())
    #: the FAPI 2.0 Security Profile's rules for this client (``oidc.fapi``)
    fapi2_security_profile: Mapped[bool] = mapped_column(Boolean, default=False,
                                                         server_default=false())
    #: RFC 9126 §6: authorization requests only through the PAR endpoint
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false())
    #: OIDC Dynamic Client Registration §2: the one alg of its request objects (None: any
    #: of the supported asymmetric ones)
    request_object_signing_alg: Mapped[str | None] = mapped_column(String(10))
    #: RFC 9101 §5: only the request object's parameters count (default: OIDC Core §6.1,
    #: as PSC's Keycloak, they take precedence over the query's)
    strict_request_objects: Mapped[bool] = mapped_column(Boolean, default=False,
                                                         server_default=false())
    #: RFC 8705 §2.1.2: the one certificate field a tls_client_auth client is matched on
    tls_client_auth_subject_dn: Mapped[str | None] = mapped_column(Text)
    tls_client_auth_san_dns: Mapped[str | None] = mapped_column(Text)
    tls_client_auth_san_uri: Mapped[str | None] = mapped_column(Text)
    tls_client_auth_san_ip: Mapped[str | None] = mapped_column(String(64))
    tls_client_auth_san_email: Mapped[str | None] = mapped_column(Text)
    #: RFC 8705 §3.4: access tokens bound to the client's TLS certificate (cnf.x5t#S256)
    tls_client_certificate_bound_access_tokens: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false())
    #: RFC 8693: the APIs (audience or resource) ops allow this client to exchange a
    #: professional's access token for (``oidc.token_exchange``); set by ops only
    token_exchange_audiences: Mapped[list] = mapped_column(JSON, default=list,
                                                           server_default="[]")


class LoginContext:
    """Who logged in, when and how: the columns an authorization code, the tokens it
    issues and the SSO session they come from all carry (``Subject.of`` reads any of
    them)."""

    id_nat: Mapped[str] = mapped_column(String(40))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    acr: Mapped[str] = mapped_column(String(40))
    amr: Mapped[list] = mapped_column(JSON)
    #: PSC's ``authMode``: CARD or MOBILE
    auth_mode: Mapped[str] = mapped_column(String(10))


class AuthorizationCode(LoginContext, db.Model):
    __tablename__ = "oauth_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(400))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    sid: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    #: RFC 9449 §10: the thumbprint of the key the token request's DPoP proof must use
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class Token(LoginContext, db.Model):
    """One issuance: an access token (by its jti) and, usually, a refresh token.
    ``grant_id`` ties together everything issued from one authorization code, so that a
    replayed code or a reused refresh token revokes the whole chain."""

    __tablename__ = "oauth_token"
    __table_args__ = (Index("ix_oauth_token_id_nat", "id_nat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    sid: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(400))
    #: the authorization request's nonce, repeated in access tokens as PSC does
    nonce: Mapped[str | None] = mapped_column(String(255))
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    issued_at: Mapped[int] = mapped_column(BigInteger, default=now)
    access_expires_at: Mapped[int] = mapped_column(BigInteger)
    refresh_expires_at: Mapped[int | None] = mapped_column(BigInteger, index=True)
    #: the first rotation of the refresh token, and how many times it was presented
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    refresh_uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    #: RFC 9449 §6: the thumbprint of the DPoP key the access token is bound to (the
    #: refresh token too when the client is public, §5)
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    #: RFC 8705 §3.1: the SHA-256 thumbprint (base64url) of the client certificate the
    #: access token is bound to (the refresh token too when the client is public, §4)
    x5t_s256: Mapped[str | None] = mapped_column(String(64))


class LoginSession(LoginContext, db.Model):
    """The single sign-on session of a browser (``sid`` in ID tokens)."""

    __tablename__ = "oidc_session"
    __table_args__ = (Index("ix_oidc_session_id_nat", "id_nat"),)

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    method_detail: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)


class BackchannelLogout(db.Model):
    """The outbox of back-channel logout (OIDC Back-Channel Logout 1.0 §2.5): one row per
    client to notify of an ended session, written in the transaction that ends it and sent
    by ``oidc.backchannel``; ``claimed_until`` keeps two senders off the same row."""

    __tablename__ = "backchannel_logout"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str] = mapped_column(String(64))
    id_nat: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[int] = mapped_column(BigInteger)
    #: pending, delivered or failed (given up after ``backchannel.GIVE_UP`` seconds)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_until: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(200))
    done_at: Mapped[int | None] = mapped_column(BigInteger)


class LoginTransaction(db.Model):
    """An authorization request waiting for the professional to log in. It is bound to
    the browser that started it (its id sits in that browser's signed session cookie)
    and, for card logins, completed through a one-time hand-off from the card origin."""

    __tablename__ = "login_transaction"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    id_nat: Mapped[str | None] = mapped_column(String(40))
    method: Mapped[str | None] = mapped_column(String(10))
    method_detail: Mapped[str | None] = mapped_column(String(128))
    #: what the method handed back with the identity (``login.outcome.Success``)
    acr: Mapped[str | None] = mapped_column(String(40))
    amr: Mapped[list | None] = mapped_column(JSON)
    authenticated_at: Mapped[int | None] = mapped_column(BigInteger)
    handoff_hash: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[int | None] = mapped_column(BigInteger)


class DPoPJti(db.Model):
    """jti of DPoP proofs already seen, by key thumbprint (RFC 9449 §11.1)."""

    __tablename__ = "dpop_jti"

    jkt: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
