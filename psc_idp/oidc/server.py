"""The Authlib authorization server of psc-idp: grants, client authentication methods,
endpoints and the token generator, wired once per app in ``app.extensions``."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidClientError, UnsupportedResponseTypeError
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import request as flask_request

from .. import audit, clients, ops
from ..extensions import db
from ..settings import current
from .ciba import CibaGrant
from .client_auth import PrivateKeyJWT, secret_basic, secret_post, unauthenticated
from .consts import MTLS_AUTH_METHODS
from .dpop_binding import DPoPBinding, bound_key
from .endpoints import EndSession, Introspection, Revocation
from .errors import printable
from .fapi import FapiProfile
from .grants import (
    AuthorizationCodeGrant,
    PscCodeChallenge,
    PscOpenIDCode,
    RefreshTokenGrant,
    add_id_token_on_refresh,
)
from .models import Token, digest, now
from .mtls import self_signed_tls_client_auth, tls_client_auth
from .mtls_binding import MtlsBinding, bound_certificate
from .token_exchange import TokenExchangeGrant
from .tokens import TokenGenerator


class PscAuthorizationServer(AuthorizationServer):
    def create_oauth2_request(self, request):
        """Also accepts a replayed authorization request (the login hand-off)."""
        return FlaskOAuth2Request(request if request is not None else flask_request)

    def get_authorization_grant(self, request):
        """Authlib quotes the requested ``response_type`` in its error description as it
        came; characters RFC 6749 §4.1.2.1 forbids there make the error itself fail
        (ValueError, a 500). Quote it filtered instead."""
        try:
            return super().get_authorization_grant(request)
        except ValueError:
            raise UnsupportedResponseTypeError(
                printable(request.payload.response_type, 40),
                description="this response_type is not supported: use code") from None

    def authenticate_client(self, request, methods, endpoint="token"):
        """When no method authenticated the request, Authlib's error lists every method
        (``cannot authenticate with methods``); ours says what the client should do."""
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            if "cannot authenticate with methods" not in (error.description or ""):
                raise
            raise unauthenticated(self.query_client, request) from None

    def query_client(self, client_id):
        client = clients.cache.find(client_id)
        return client if client is not None and client.enabled else None

    def save_token(self, token, request):
        settings = current()
        subject, issued = request.user, now()
        refresh, jkt, x5t = token.get("refresh_token"), bound_key(), bound_certificate()
        db.session.add(Token(
            jti=token.pop("_jti"), grant_id=subject.grant_id, client_id=request.client.client_id,
            id_nat=subject.id_nat, sid=subject.sid, scope=token["scope"],
            auth_time=subject.auth_time, acr=subject.acr, amr=subject.amr,
            auth_mode=subject.auth_mode, nonce=subject.nonce,
            refresh_hash=digest(refresh) if refresh else None,
            issued_at=issued, access_expires_at=issued + token["expires_in"],
            refresh_expires_at=issued + settings.refresh_token_lifetime if refresh else None,
            dpop_jkt=jkt, x5t_s256=x5t,
        ))
        bindings = {"dpop_jkt": jkt, "x5t_s256": x5t}
        if request.auth_method in MTLS_AUTH_METHODS:
            bindings["client_auth"] = request.auth_method
        with db.session.no_autoflush:  # the rows go together at the commit (transactions)
            audit.record("token.issued", id_nat=subject.id_nat,
                         client_id=request.client.client_id,
                         grant_type=request.payload.grant_type,
                         **{k: v for k, v in bindings.items() if v})
        ops.token_issued(request.payload.grant_type)


class Issuer(IssuerParameter):
    def get_issuer(self):
        return current().issuer


def build_server(app) -> PscAuthorizationServer:
    server = PscAuthorizationServer()
    server.init_app(app)
    server.register_token_generator("default", TokenGenerator())
    server.register_client_auth_method("client_secret_basic", secret_basic)
    server.register_client_auth_method("client_secret_post", secret_post)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_client_auth_method("tls_client_auth", tls_client_auth)
    server.register_client_auth_method("self_signed_tls_client_auth",
                                       self_signed_tls_client_auth)
    server.register_grant(AuthorizationCodeGrant, [PscCodeChallenge(required=True),
                                                   PscOpenIDCode(), DPoPBinding(),
                                                   MtlsBinding(), FapiProfile()])
    server.register_grant(RefreshTokenGrant, [_id_token_on_refresh, DPoPBinding(),
                                              MtlsBinding(), FapiProfile()])
    server.register_grant(CibaGrant, [DPoPBinding(), MtlsBinding(), FapiProfile()])
    server.register_grant(TokenExchangeGrant)
    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    server.register_endpoint(EndSession)
    server.register_extension(Issuer())
    return server


def _id_token_on_refresh(grant):
    grant.register_hook("after_create_token_response", add_id_token_on_refresh)
