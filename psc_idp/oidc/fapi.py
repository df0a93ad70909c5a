"""The FAPI 2.0 Security Profile, per client (``fapi2_security_profile``): what the profile
asks of a client and of psc-idp (FAPI 2.0 Security Profile §5.3.2), enforced where each
rule applies —
- pushed authorization requests only (§5.3.2.2-3: ``par``);
- PKCE with S256 (§5.3.2.2-5: ``grants.PscCodeChallenge``);
- sender-constrained access tokens (§5.3.2.1-1: a DPoP proof with every token request, or
  tokens bound to the client's TLS certificate (RFC 8705), ``FapiProfile`` below);
- client authentication by ``private_key_jwt`` or mTLS (§5.3.2.1-4, at registration:
  ``check_client``);
- ``iss`` in the authorization response (§5.3.2.2-7: always, RFC 9207);
- authorization codes valid at most 60 s (§5.3.2.1-8: ``code_lifetime``);
- public clients are not allowed, so no refresh token is ever without a sender
  constraint."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError

from ..settings import current as settings
from . import dpop_binding, mtls_binding

#: §5.3.2.1-4
AUTH_METHODS = ("private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth")
#: §5.3.2.1-8
MAX_CODE_LIFETIME = 60


def applies(client) -> bool:
    return bool(getattr(client, "fapi2_security_profile", False))


def code_lifetime(client) -> int:
    lifetime = settings().code_lifetime
    return min(lifetime, MAX_CODE_LIFETIME) if applies(client) else lifetime


def check_client(client) -> str | None:
    """Why the client's registration does not fit the profile, or None."""
    if applies(client) and client.token_endpoint_auth_method not in AUTH_METHODS:
        return ("fapi2_security_profile: the client must authenticate with private_key_jwt "
                "or mTLS (FAPI 2.0 Security Profile 5.3.2.1)")
    return None


def sender_constrained(request) -> bool:
    """The tokens of this token request will be bound to a key the client proved it holds:
    a DPoP proof's, or the TLS client certificate's (``mtls_binding``)."""
    return dpop_binding.bound_key() is not None or mtls_binding.binds(request.client)


class FapiProfile:
    """Grant extension: a FAPI 2.0 client's token request must be sender-constrained."""

    def __call__(self, grant):
        grant.register_hook("before_create_token_response", check_token_request)


def check_token_request(grant) -> None:
    if applies(grant.request.client) and not sender_constrained(grant.request):
        raise InvalidRequestError("FAPI 2.0: access tokens must be sender-constrained: send "
                                  "a DPoP proof (RFC 9449) with the token request, or "
                                  "register certificate-bound tokens (RFC 8705)")
