"""OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2): only what psc-idp
implements, nothing more."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..clients.jwks import ASSERTION_ALGS as REQUEST_OBJECT_ALGS
from ..extensions import idp
from ..keys.signer import SUPPORTED_ALGS
from ..settings import Settings
from .consts import (
    CIBA_DELIVERY_MODES,
    CIBA_GRANT_TYPE,
    CLIENT_AUTH_METHODS,
    GRANT_TYPES,
    MTLS_ALIASED,
    MTLS_AUTH_METHODS,
    PATHS,
    SCOPES,
    TOKEN_AUTH_METHODS,
    TOKEN_EXCHANGE_GRANT_TYPE,
)
from .dpop import ALGS as DPOP_ALGS
from .response_mode import MODES

CLAIMS = [
    "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp",
    "at_hash", "auth_level", "session_state", "authMode", "preferred_username",
    "SubjectNameID", "given_name", "family_name", "codeCivilite",
    "email_verified", "Palier_Authentification", "Secteur_Activite", "SubjectOrganization",
    "SubjectOrganizationID", "SubjectRole", "PSI_Locale", "Mode_Acces_Raison",
    "Acces_Regulation_Medicale", "UITVersion", "otherIds", "SubjectRefPro",
]


def authorization_endpoint(settings: Settings) -> str:
    """The advertised authorization endpoint: PSC serves it on a separate "wallet" origin
    (psc.md §1), psc-idp under the issuer unless ``authorization_endpoint`` says otherwise."""
    return settings.authorization_endpoint or \
        settings.issuer + PATHS["authorization_endpoint"]


def is_split(settings: Settings) -> bool:
    """True when the authorization endpoint is on another origin than the issuer."""
    def origin(url: str) -> tuple:
        parts = urlsplit(url)
        return parts.scheme, parts.netloc.lower()
    return origin(authorization_endpoint(settings)) != origin(settings.issuer)


def auth_methods(settings: Settings, methods) -> list[str]:
    """``methods`` that work on this server: mTLS client authentication (RFC 8705 §2) needs
    the mTLS origin, ``tls_client_auth`` the organisation trust anchors too."""
    unavailable = set()
    if not settings.mtls_url:
        unavailable |= set(MTLS_AUTH_METHODS)
    if not settings.org_trust_anchors:
        unavailable.add("tls_client_auth")
    return [method for method in methods if method not in unavailable]


def mtls_metadata(settings: Settings) -> dict:
    """RFC 8705 §3.3, §5: the mTLS endpoint aliases and certificate-bound access tokens,
    when the mTLS origin is configured."""
    if not settings.mtls_url:
        return {}
    prefix = settings.mtls_url + urlsplit(settings.issuer).path.rstrip("/")
    return {"tls_client_certificate_bound_access_tokens": True,
            "mtls_endpoint_aliases": {name: prefix + PATHS[name] for name in MTLS_ALIASED}}


def metadata() -> dict:
    state = idp()
    issuer, algs = state.settings.issuer, state.keys.algorithms
    endpoints = {name: issuer + path for name, path in PATHS.items()}
    endpoints["authorization_endpoint"] = authorization_endpoint(state.settings)
    return {
        "issuer": issuer,
        **endpoints,
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(MODES),
        # token exchange (RFC 8693) needs mTLS: advertised with the mTLS origin only
        "grant_types_supported": [*GRANT_TYPES, CIBA_GRANT_TYPE, *(
            [TOKEN_EXCHANGE_GRANT_TYPE] if state.settings.mtls_url else [])],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": auth_methods(state.settings,
                                                              CLIENT_AUTH_METHODS),
        # client assertions (private_key_jwt) are verified with these, whatever our own keys
        "token_endpoint_auth_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "introspection_endpoint_auth_methods_supported": auth_methods(state.settings,
                                                                      TOKEN_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "revocation_endpoint_auth_methods_supported": auth_methods(state.settings,
                                                                   CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),  # RFC 9449 §5.1
        **mtls_metadata(state.settings),
        "claims_supported": CLAIMS,
        "acr_values_supported": sorted(set(state.settings.acr.values())),
        "prompt_values_supported": ["none", "login"],
        "claims_parameter_supported": False,
        # RFC 9101 by value; request_uri only as issued by the PAR endpoint (RFC 9126 §4),
        # never fetched: no client may register request_uris (OIDC Discovery §3), so
        # registration is required and none is possible -- a client that would host its
        # request object at a URL learns here that it cannot
        "request_parameter_supported": True,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": True,
        "request_object_signing_alg_values_supported": list(REQUEST_OBJECT_ALGS),
        # RFC 9126 §5 (pushed_authorization_request_endpoint is among the endpoints)
        "require_pushed_authorization_requests":
            state.settings.require_pushed_authorization_requests,
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["fr", "en"],
        # OIDC Back-Channel Logout 1.0 §2.1 (oidc.backchannel)
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        # OpenID CIBA Core 1.0 §4 (oidc.ciba): PSC's channel=MOBILE|CARD on top
        "backchannel_token_delivery_modes_supported": list(CIBA_DELIVERY_MODES),
        "backchannel_user_code_parameter_supported": False,
        # RFC 7591, gated by initial access tokens
        "registration_endpoint": issuer + "/clients-registrations/openid-connect",
    }
