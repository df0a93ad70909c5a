"""Ops policy of a relying party: the settings that decide how strictly psc-idp treats it
(PKCE, client authentication, access-token typing, refresh-token reuse, DPoP, pushed
authorization requests, request objects, the FAPI 2.0 profile). Ops set them
(CLI, admin API, initial access tokens); a vendor registering through RFC 7591 or updating
through RFC 7592 may make them stricter, never looser than the floor: at registration the
server's settings and the initial access token's policy, at an update the client's current
values. An omitted policy field takes the floor (RFC 7591 §2 lets the server substitute)."""

from __future__ import annotations

from ..settings import current as _settings
from .metadata import RegistrationError

POLICY_FIELDS = ("require_pkce", "strict_client_auth", "access_token_format",
                 "refresh_reuse_grace", "dpop_bound_access_tokens",
                 "require_pushed_authorization_requests", "strict_request_objects",
                 "fapi2_security_profile")
_BOOLEANS = ("require_pkce", "strict_client_auth", "dpop_bound_access_tokens",
             "require_pushed_authorization_requests", "strict_request_objects",
             "fapi2_security_profile")
#: access-token formats from the loosest to the strictest (RFC 9068 §2.1 explicit typing)
FORMATS = ("psc", "rfc9068")


class LooserThanPolicy(RegistrationError):
    """A policy field looser than ops allow; ``field`` names it."""

    def __init__(self, message: str, field: str):
        super().__init__(message, field)


def strictness(field: str, value) -> int:
    """Larger is stricter."""
    if field in _BOOLEANS:
        return int(bool(value))
    if field == "access_token_format":
        return FORMATS.index(value)
    return -(_settings().refresh_reuse_grace if value is None else value)


def registration_floor(key_policy: dict | None) -> dict:
    """What ops require of a client registered with an initial access token carrying
    ``key_policy``: the server's settings, tightened by the token."""
    floor = {"require_pkce": _settings().pkce_required_for_confidential,
             "strict_client_auth": False, "access_token_format": FORMATS[0],
             "refresh_reuse_grace": None, "dpop_bound_access_tokens": False,
             "require_pushed_authorization_requests": False, "strict_request_objects": False,
             "fapi2_security_profile": False}
    for field, value in (key_policy or {}).items():
        if strictness(field, value) > strictness(field, floor[field]):
            floor[field] = value
    return floor


def current_floor(client) -> dict:
    """At an RFC 7592 update: the client's current values (ops may have set them)."""
    return {field: getattr(client, field) for field in POLICY_FIELDS}


def at_least(meta: dict, floor: dict) -> dict:
    """``meta`` with every policy field at least as strict as ``floor``: an omitted one
    takes the floor, a looser one raises ``LooserThanPolicy``."""
    for field, minimum in floor.items():
        if field not in meta:
            meta[field] = minimum
        elif strictness(field, meta[field]) < strictness(field, minimum):
            raise LooserThanPolicy(
                f"{field}: ops require at least {minimum!r} for this client; a registration "
                "may make it stricter, not looser (ask the IdP's operators)", field)
    return meta
