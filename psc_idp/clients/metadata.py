"""Client metadata (RFC 7591 §2 fields and psc-idp's own): each field checked and normalised
the same way whatever the door (CLI, admin API, RFC 7591/7592); errors carry RFC 7591
§3.2.2's codes."""

from __future__ import annotations

import re

from ..directory.claims import COMPAT_FLAGS
from ..errors import PscError
from ..keys.signer import SUPPORTED_ALGS
from ..oidc.consts import (
    CIBA_DELIVERY_MODES,
    CIBA_GRANT_TYPE,
    CLIENT_AUTH_METHODS,
    COMPAT_EDC_X5T_HEX,
    GRANT_TYPES,
    MTLS_AUTH_METHODS,
    SCOPES,
)
from . import jwks as client_keys
from . import uris

CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{3,64}$")
MAX_URIS = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: what can be set or updated, with the client attribute it maps to
FIELDS = {
    "client_name": "name", "redirect_uris": "redirect_uris",
    "post_logout_redirect_uris": "post_logout_redirect_uris",
    "token_endpoint_auth_method": "token_endpoint_auth_method", "jwks": "jwks",
    "scope": "scope", "grant_types": "grant_types",
    "id_token_signed_response_alg": "id_token_signed_response_alg",
    "userinfo_signed_response_alg": "userinfo_signed_response_alg",
    "require_pkce": "require_pkce", "compat": "compat", "contacts": "contacts",
    "strict_client_auth": "strict_client_auth", "access_token_format": "access_token_format",
    "refresh_reuse_grace": "refresh_reuse_grace",
    "backchannel_logout_uri": "backchannel_logout_uri",
    "backchannel_logout_session_required": "backchannel_logout_session_required",
    "backchannel_token_delivery_mode": "backchannel_token_delivery_mode",
    "backchannel_client_notification_endpoint": "backchannel_client_notification_endpoint",
    "dpop_bound_access_tokens": "dpop_bound_access_tokens",
    "require_pushed_authorization_requests": "require_pushed_authorization_requests",
    "fapi2_security_profile": "fapi2_security_profile",
    "request_object_signing_alg": "request_object_signing_alg",
    "strict_request_objects": "strict_request_objects",
    # RFC 8705 §2.1.2, §3.4
    "tls_client_auth_subject_dn": "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns": "tls_client_auth_san_dns",
    "tls_client_auth_san_uri": "tls_client_auth_san_uri",
    "tls_client_auth_san_ip": "tls_client_auth_san_ip",
    "tls_client_auth_san_email": "tls_client_auth_san_email",
    "tls_client_certificate_bound_access_tokens": "tls_client_certificate_bound_access_tokens",
    "token_exchange_audiences": "token_exchange_audiences",
}
#: RFC 8705 §2.1.2: a tls_client_auth client registers exactly one of these
TLS_SUBJECT_FIELDS = ("tls_client_auth_subject_dn", "tls_client_auth_san_dns",
                      "tls_client_auth_san_uri", "tls_client_auth_san_ip",
                      "tls_client_auth_san_email")
ACCESS_TOKEN_FORMATS = ("psc", "rfc9068")
#: the claim spellings and the EDC confirmation value
CLIENT_COMPAT_FLAGS = COMPAT_FLAGS | {COMPAT_EDC_X5T_HEX}


class RegistrationError(PscError, ValueError):
    """Invalid client metadata; ``field`` names it, the message says why (RFC 7591 §3.2.2:
    ``invalid_redirect_uri`` or ``invalid_client_metadata``)."""

    status = 400
    for_programs = True

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field

    @property
    def error(self) -> str:
        uri_fields = {"redirect_uris", "redirect_uri"}
        return "invalid_redirect_uri" if self.field in uri_fields else "invalid_client_metadata"


def check_uri(uri: str, field: str) -> str:
    """``uri`` normalised as stored (``clients.uris``)."""
    try:
        return uris.normalise(uri)
    except uris.InvalidUri as exc:
        raise RegistrationError(f"{field}: {exc}", field) from None


def _uris(values, field: str, required: bool) -> list[str]:
    if not isinstance(values, list | tuple) or (required and not values):
        raise RegistrationError(f"{field}: a non-empty list of URLs is required" if required
                                else f"{field}: must be a list of URLs", field)
    if len(values) > MAX_URIS:
        raise RegistrationError(f"{field}: at most {MAX_URIS}", field)
    return list(dict.fromkeys(check_uri(v, field) for v in values))


def backchannel_uri(value, field: str = "backchannel_logout_uri") -> str | None:
    """OIDC Back-Channel Logout 1.0 §2.2 (and CIBA Core §4's notification endpoint): an
    absolute URL without fragment, normalised as redirect URIs are; https in production
    mode (http on loopback in development only, where the sandbox's demo RP listens)."""
    from ..settings import current as settings

    if value is None:
        return None
    uri = check_uri(value, field)
    if uri.startswith("http:") and settings().mode == "production":
        raise RegistrationError(f"{field}: must use https in production mode", field)
    return uri


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def validate(meta: dict) -> dict:
    """Check every field of ``meta`` (client metadata names); returns the normalised values."""
    unknown = set(meta) - set(FIELDS)
    if unknown:
        raise RegistrationError(f"unsupported field(s): {', '.join(sorted(unknown))}",
                                sorted(unknown)[0])
    out = {}
    for field, value in meta.items():
        out[field] = _check_field(field, value)
    method = out.get("token_endpoint_auth_method")
    if method == "private_key_jwt":
        check_assertion_keys(out.get("jwks"))
    grant_types = out.get("grant_types") or []
    if CIBA_GRANT_TYPE in grant_types:  # CIBA Core §4: listing the grant type alone is poll
        out["grant_types"] = [g for g in grant_types if g != CIBA_GRANT_TYPE]
        out["backchannel_token_delivery_mode"] = \
            out.get("backchannel_token_delivery_mode") or "poll"
    return out


def check_ciba(client) -> None:
    """CIBA Core §4 on a client's whole metadata: ping needs its notification endpoint,
    and a public client cannot use CIBA (§7.1: the client authenticates)."""
    mode = client.backchannel_token_delivery_mode
    if mode == "ping" and not client.backchannel_client_notification_endpoint:
        raise RegistrationError("backchannel_client_notification_endpoint: required with the "
                                "ping delivery mode", "backchannel_client_notification_endpoint")
    if mode and client.token_endpoint_auth_method == "none":
        raise RegistrationError("backchannel_token_delivery_mode: CIBA needs an authenticated "
                                "client (not token_endpoint_auth_method none)",
                                "backchannel_token_delivery_mode")


def check_mtls(client) -> None:
    """RFC 8705 on a client's whole metadata: mTLS needs the server's mTLS origin; a
    ``tls_client_auth`` client registers exactly one certificate subject field (§2.1.2), a
    ``self_signed_tls_client_auth`` client its keys (§2.2.2)."""
    from ..settings import current as settings

    method = client.token_endpoint_auth_method
    subjects = [f for f in TLS_SUBJECT_FIELDS if getattr(client, FIELDS[f])]
    if (method in MTLS_AUTH_METHODS or client.tls_client_certificate_bound_access_tokens) \
            and not settings().mtls_url:
        field = "token_endpoint_auth_method" if method in MTLS_AUTH_METHODS else \
            "tls_client_certificate_bound_access_tokens"
        raise RegistrationError(f"{field}: this server has no mTLS origin (mtls_url)", field)
    if len(subjects) > 1:
        raise RegistrationError(f"{subjects[1]}: register one of {', '.join(subjects)} only "
                                "(RFC 8705 section 2.1.2)", subjects[1])
    if method == "tls_client_auth" and not subjects:
        raise RegistrationError("tls_client_auth_subject_dn: tls_client_auth needs the "
                                "certificate's subject DN (or one SAN field) to match",
                                "tls_client_auth_subject_dn")
    if method == "self_signed_tls_client_auth" and not (client.jwks or {}).get("keys"):
        raise RegistrationError("jwks: self_signed_tls_client_auth needs the public key of "
                                "the client's certificate", "jwks")


def _tls_subject(field: str, value):
    """RFC 8705 §2.1.2's fields, normalised (a DN in RFC 4514 form)."""
    import ipaddress

    from ..oidc.mtls import normalise_dn

    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 1000 or \
            _CONTROL.search(value):
        raise RegistrationError(f"{field}: a string of at most 1000 characters", field)
    try:
        if field == "tls_client_auth_subject_dn":
            return normalise_dn(value)
        if field == "tls_client_auth_san_ip":
            return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        what = "an RFC 4514 DN (CN=…,OU=…,O=…,C=FR)" if field.endswith("_dn") else \
            "an IP address"
        raise RegistrationError(f"{field}: {what}", field) from None
    if field == "tls_client_auth_san_email" and "@" not in value:
        raise RegistrationError(f"{field}: an e-mail address", field)
    if field == "tls_client_auth_san_uri" and ":" not in value:
        raise RegistrationError(f"{field}: an absolute URI", field)
    return value.strip()


def check_assertion_keys(jwks) -> None:
    if not client_keys.can_verify_assertions(jwks):
        raise RegistrationError(
            "jwks: private_key_jwt needs the client's public keys, at least one usable with "
            f"{', '.join(client_keys.ASSERTION_ALGS)} (RSA, or EC on P-256)", "jwks")


def _check_field(field: str, value):  # noqa: C901 - one branch per field reads best
    if field == "client_name":
        if not isinstance(value, str) or not value.strip() or len(value) > 200 or \
                _CONTROL.search(value):
            raise RegistrationError("client_name: required, at most 200 characters, no "
                                    "control characters", field)
        return value.strip()
    if field in ("redirect_uris", "post_logout_redirect_uris"):
        return _uris(value, field, required=field == "redirect_uris")
    if field == "token_endpoint_auth_method":
        if not isinstance(value, str) or value not in CLIENT_AUTH_METHODS:
            raise RegistrationError(f"{field}: one of {', '.join(CLIENT_AUTH_METHODS)}", field)
        return value
    if field == "jwks":
        try:
            return client_keys.check_key_set(value)
        except client_keys.InvalidKeys as exc:
            raise RegistrationError(f"jwks: {exc}", field) from None
    if field == "scope":
        scopes = value.split() if isinstance(value, str) and len(value) <= 400 else None
        if not scopes or "openid" not in scopes or set(scopes) - set(SCOPES):
            raise RegistrationError(f"scope: 'openid' plus any of {' '.join(SCOPES)}", field)
        return " ".join(dict.fromkeys(scopes))
    if field == "grant_types":
        if not _strings(value) or not value or set(value) - {*GRANT_TYPES, CIBA_GRANT_TYPE} \
                or "authorization_code" not in value:
            raise RegistrationError("grant_types: authorization_code, optionally "
                                    f"refresh_token and {CIBA_GRANT_TYPE}", field)
        return list(dict.fromkeys(value))
    if field in ("id_token_signed_response_alg", "userinfo_signed_response_alg",
                 "request_object_signing_alg"):
        if value is None and field != "id_token_signed_response_alg":
            return None
        if not isinstance(value, str) or value not in SUPPORTED_ALGS:
            raise RegistrationError(f"{field}: one of {', '.join(SUPPORTED_ALGS)}", field)
        return value
    if field in ("backchannel_logout_uri", "backchannel_client_notification_endpoint"):
        return backchannel_uri(value, field)
    if field == "backchannel_token_delivery_mode":
        if value is not None and value not in CIBA_DELIVERY_MODES:
            raise RegistrationError(f"{field}: one of {', '.join(CIBA_DELIVERY_MODES)}, or "
                                    "null (no CIBA)", field)
        return value
    if field in TLS_SUBJECT_FIELDS:
        return _tls_subject(field, value)
    if field in ("require_pkce", "strict_client_auth", "backchannel_logout_session_required",
                 "dpop_bound_access_tokens", "require_pushed_authorization_requests",
                 "strict_request_objects", "fapi2_security_profile",
                 "tls_client_certificate_bound_access_tokens"):
        if not isinstance(value, bool):
            raise RegistrationError(f"{field}: true or false", field)
        return value
    if field == "access_token_format":
        if not isinstance(value, str) or value not in ACCESS_TOKEN_FORMATS:
            raise RegistrationError(f"{field}: one of {', '.join(ACCESS_TOKEN_FORMATS)}", field)
        return value
    if field == "refresh_reuse_grace":
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value <= 60):
            raise RegistrationError(f"{field}: seconds from 0 to 60, or null for the "
                                    "server's setting", field)
        return value
    if field == "token_exchange_audiences":
        if not _strings(value) or len(value) > MAX_URIS or not all(
                0 < len(v) <= 400 and v.isprintable() and not v.isspace() for v in value):
            raise RegistrationError(f"{field}: a list of at most {MAX_URIS} API identifiers "
                                    "(URLs or names, at most 400 printable characters)", field)
        return list(dict.fromkeys(value))
    if field == "compat":
        if not _strings(value) or set(value) - CLIENT_COMPAT_FLAGS:
            raise RegistrationError(f"compat: any of {', '.join(sorted(CLIENT_COMPAT_FLAGS))}",
                                    field)
        return list(dict.fromkeys(value))
    if field == "contacts":
        if not _strings(value) or len(value) > 10 or not all(
                "@" in c and len(c) < 200 and not _CONTROL.search(c) for c in value):
            raise RegistrationError("contacts: a list of e-mail addresses", field)
        return value
    raise RegistrationError(f"unsupported field {field}", field)


#: the metadata of a client registered without saying otherwise
DEFAULTS = {
    "post_logout_redirect_uris": [], "token_endpoint_auth_method": "client_secret_basic",
    "jwks": None, "id_token_signed_response_alg": "RS256",
    "userinfo_signed_response_alg": None, "compat": [],
    "contacts": [], "scope": "openid scope_all", "grant_types": list(GRANT_TYPES),
    "strict_client_auth": False, "access_token_format": "psc", "refresh_reuse_grace": None,
    "backchannel_logout_uri": None, "backchannel_logout_session_required": False,
    "backchannel_token_delivery_mode": None, "backchannel_client_notification_endpoint": None,
    "dpop_bound_access_tokens": False,
    "request_object_signing_alg": None, "fapi2_security_profile": False,
    **dict.fromkeys(TLS_SUBJECT_FIELDS), "tls_client_certificate_bound_access_tokens": False,
    "token_exchange_audiences": [],
}
