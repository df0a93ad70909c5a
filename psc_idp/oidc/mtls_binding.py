"""Certificate-bound tokens (RFC 8705 §3-§4): the token endpoint's rules as an Authlib grant
extension, userinfo's as a check on the access token.

A client registered with ``tls_client_certificate_bound_access_tokens`` calls the token
endpoint's mTLS alias with its certificate, whatever its authentication method; its access
tokens carry ``cnf.x5t#S256`` (both shapes, and introspection) and are refused at userinfo
unless the request presents the same certificate (its mTLS alias). A public client's
refresh token is bound to that certificate too (§4: a confidential client's is bound to its
authentication). Other clients get unbound tokens as before, on either origin."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6750 import InvalidTokenError
from flask import g

from . import mtls


def bound_certificate() -> str | None:
    """The ``x5t#S256`` the tokens of the current token request are bound to
    (``check_token_request``)."""
    return g.get("psc_idp_x5t_s256")


def binds(client) -> bool:
    """The tokens of the current token request will be bound to the client's certificate
    (or the request refused): known before any grant hook runs (their order is not
    fixed)."""
    return bool(client.tls_client_certificate_bound_access_tokens) and \
        mtls.certificate() is not None


class MtlsBinding:
    """Grant extension: the binding decided before the grant issues anything."""

    def __call__(self, grant):
        grant.register_hook("before_create_token_response", check_token_request)


def check_token_request(grant) -> None:
    """§3: a bound client's token request carries its certificate; §4: a public client's
    bound refresh token is used with the same certificate."""
    request = grant.request
    g.psc_idp_x5t_s256 = None
    if not request.client.tls_client_certificate_bound_access_tokens:
        return
    cert = mtls.certificate()
    if cert is None:
        raise InvalidRequestError(
            "this client's tokens are bound to its TLS certificate "
            "(tls_client_certificate_bound_access_tokens): call the token endpoint's mTLS "
            f"alias {mtls.alias()} with the certificate")
    x5t = mtls.thumbprint(cert)
    refresh = request.refresh_token
    if refresh is not None and request.client.is_public and \
            refresh.row.x5t_s256 not in (None, x5t):
        raise InvalidGrantError("this refresh token is bound to another client certificate")
    g.psc_idp_x5t_s256 = x5t


def check_access_token(token) -> None:
    """§3: a certificate-bound access token is accepted only with its certificate."""
    bound = token.row.x5t_s256
    if bound is None:
        return
    cert = mtls.certificate()
    if cert is None:
        raise InvalidTokenError(description="this access token is bound to a client "
                                            "certificate: present it (mTLS endpoint alias)")
    if mtls.thumbprint(cert) != bound:
        raise InvalidTokenError(description="this access token is bound to another client "
                                            "certificate")
