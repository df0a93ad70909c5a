"""DPoP-bound tokens (RFC 9449): the token endpoint's rules (§5, §10) as an Authlib grant
extension, the resource endpoints' (§7.1) as the token validator of the ``DPoP`` scheme.

A client that sends no ``DPoP`` header gets Bearer tokens as before; one registered with
``dpop_bound_access_tokens`` must send a proof with every token request. Access tokens
issued on a proof carry ``cnf.jkt`` and are refused without a proof of the same key;
refresh tokens are bound to that key for public clients only (§5: a confidential
client's refresh token is bound to its authentication)."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, TokenValidator
from flask import g
from flask import request as flask_request

from . import dpop
from .issued import IssuedToken, access
from .mtls_binding import check_access_token


class InvalidDPoPToken(dpop.DPoPError):
    """§7.1: the access token is not usable with this request (``DPoP`` challenge)."""

    error = "invalid_token"
    status_code = 401


def check_proof() -> None:
    """§5: the token request's proof, if any, checked before a grant reads its code or
    refresh token (a client learns the nonce without spending anything)."""
    proof = dpop.verify(flask_request.headers, "POST", "token_endpoint",
                        nonce_required=dpop.nonce_required("token_endpoint"))
    g.psc_idp_dpop_jkt = proof.jkt if proof else None


def bound_key() -> str | None:
    """The thumbprint of the key the current token request proved it holds
    (``check_proof``): the tokens issued are bound to it."""
    return g.get("psc_idp_dpop_jkt")


class DPoPBinding:
    """Grant extension: ``dpop_jkt`` checked at the authorization endpoint, the proof of a
    token request checked before the grant issues anything."""

    def __call__(self, grant):
        grant.register_hook("after_validate_authorization_request_payload", check_dpop_jkt)
        grant.register_hook("before_create_token_response", check_token_request)


def check_dpop_jkt(grant, redirect_uri) -> None:
    """§10: ``dpop_jkt``, when sent, is a JWK SHA-256 thumbprint (stored with the code)."""
    value = grant.request.payload.data.get("dpop_jkt")
    if value is not None and not dpop.is_thumbprint(value):
        raise InvalidRequestError("dpop_jkt must be the base64url SHA-256 JWK thumbprint "
                                  "of the DPoP key (RFC 7638)")


def check_token_request(grant) -> None:
    """§5, §10: a proof (``check_proof``) where the client's registration, a code issued
    for ``dpop_jkt`` or a public client's bound refresh token requires one, of the key
    they are bound to."""
    request, jkt = grant.request, bound_key()
    required, what = _required_key(request)
    if jkt is None and (required or request.client.dpop_bound_access_tokens):
        raise dpop.InvalidDPoPProof(
            f"{what} is bound to a DPoP key: send a DPoP proof" if required else
            "this client must send a DPoP proof (dpop_bound_access_tokens)")
    if required and jkt != required:
        raise InvalidGrantError(f"{what} is bound to another DPoP key than the proof's")


def _required_key(request) -> tuple[str | None, str]:
    code, refresh = request.authorization_code, request.refresh_token
    if code is not None:
        return code.row.dpop_jkt, "this code (dpop_jkt)"
    if refresh is not None and request.client.is_public:
        return refresh.row.dpop_jkt, "this refresh token"
    return None, ""


class DPoPTokenValidator(TokenValidator):
    """§7.1: ``Authorization: DPoP <token>`` with a proof of the token's key whose
    ``ath`` is the token's hash, at ``endpoint``."""

    TOKEN_TYPE = "dpop"

    def __init__(self, endpoint: str):
        super().__init__(realm="psc-idp")
        self.endpoint = endpoint

    def authenticate_token(self, token_string):
        return access(token_string, document=True) if token_string else None

    def validate_token(self, token: IssuedToken | None, scopes, request):
        if token is None or token.is_expired() or token.is_revoked():
            raise InvalidDPoPToken("the access token is missing or invalid")
        raw = flask_request.headers["Authorization"].split(None, 1)[1]
        proof = dpop.verify(flask_request.headers, flask_request.method, self.endpoint,
                            access_token=raw, nonce_required=dpop.nonce_required(self.endpoint))
        if proof is None:
            raise dpop.InvalidDPoPProof("the DPoP scheme needs a DPoP proof")
        if token.row.dpop_jkt is None:
            raise InvalidDPoPToken("this access token is not DPoP-bound: send it as Bearer")
        if proof.jkt != token.row.dpop_jkt:
            raise InvalidDPoPToken("this access token is bound to another DPoP key")
        check_access_token(token)  # bound to a certificate too (RFC 8705 §3)


def refuse_as_bearer(token: IssuedToken) -> None:
    """§7.1: a DPoP-bound access token presented as a Bearer token is refused."""
    if token.row.dpop_jkt is not None:
        raise InvalidDPoPToken("this access token is DPoP-bound: send it with the DPoP "
                               "scheme and a DPoP proof")
