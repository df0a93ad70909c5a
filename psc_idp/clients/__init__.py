"""Relying parties: validation of their metadata (RFC 7591 §2 fields, PSC's rules) and
their whole life — create, update, rotate secret, disable/enable, delete. The CLI, the admin
API and dynamic registration (RFC 7591/7592) all go through these functions, so the rules
and the audit records are the same whatever the door. Secrets are shown once, stored hashed.
Disabling a client revokes its tokens (enabling it again does not bring them back);
deleting it revokes them too and keeps its id, which is never given to another client."""

from __future__ import annotations

import re
import secrets

from flask import current_app
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..directory.claims import COMPAT_FLAGS
from ..extensions import db
from ..keys.signer import SUPPORTED_ALGS
from ..oidc import revocation
from ..oidc.consts import CLIENT_AUTH_METHODS, GRANT_TYPES, SCOPES
from ..oidc.models import Client, digest, now
from . import jwks as client_keys
from . import uris
from .models import DeletedClient

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
}
ACCESS_TOKEN_FORMATS = ("psc", "rfc9068")


class RegistrationError(ValueError):
    """Invalid client metadata; ``field`` names it, the message says why (RFC 7591 §3.2.2:
    ``invalid_redirect_uri`` or ``invalid_client_metadata``)."""

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
        _check_assertion_keys(out.get("jwks"))
    return out


def _check_assertion_keys(jwks) -> None:
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
        if not _strings(value) or not value or set(value) - set(GRANT_TYPES) \
                or "authorization_code" not in value:
            raise RegistrationError("grant_types: authorization_code, optionally "
                                    "refresh_token", field)
        return list(dict.fromkeys(value))
    if field in ("id_token_signed_response_alg", "userinfo_signed_response_alg"):
        if value is None and field == "userinfo_signed_response_alg":
            return None
        if not isinstance(value, str) or value not in SUPPORTED_ALGS:
            raise RegistrationError(f"{field}: one of {', '.join(SUPPORTED_ALGS)}", field)
        return value
    if field in ("require_pkce", "strict_client_auth"):
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
    if field == "compat":
        if not _strings(value) or set(value) - set(COMPAT_FLAGS):
            raise RegistrationError(f"compat: any of {', '.join(sorted(COMPAT_FLAGS))}", field)
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
}


def pkce_default() -> bool:
    """``require_pkce`` of a new confidential client: PSC requires no PKCE (psc.md §10),
    ops may (``pkce_required_for_confidential``). Public clients always need it."""
    return current_app.extensions["psc_idp"].settings["pkce_required_for_confidential"]


def create_client(*, name: str, redirect_uris: list[str], post_logout_redirect_uris=(),
                  auth_method="client_secret_basic", client_id=None, jwks=None,
                  id_token_alg="RS256", userinfo_alg=None, require_pkce=None,
                  compat=(), actor: str = "cli", registered_by: str = "cli",
                  contacts=(), grant_types=None, scope="openid scope_all", **extra,
                  ) -> tuple[Client, str | None]:
    """Validate and store a client; returns it with its secret (None if it has none).
    ``extra``: other metadata (``strict_client_auth``, ``access_token_format`` …);
    ``require_pkce`` None takes ``pkce_default()``."""
    metadata = {
        "client_name": name, "redirect_uris": list(redirect_uris),
        "post_logout_redirect_uris": list(post_logout_redirect_uris),
        "token_endpoint_auth_method": auth_method, "jwks": jwks,
        "id_token_signed_response_alg": id_token_alg,
        "userinfo_signed_response_alg": userinfo_alg,
        "compat": list(compat), "contacts": list(contacts), "scope": scope,
        "grant_types": list(grant_types or GRANT_TYPES), **extra,
    }
    if require_pkce is not None:
        metadata["require_pkce"] = require_pkce
    return register(metadata, client_id=client_id, actor=actor, registered_by=registered_by)


def register(metadata: dict, *, client_id: str | None = None, actor: str,
             registered_by: str, registration_token_hash: str | None = None,
             ) -> tuple[Client, str | None]:
    """Store a client from its metadata (RFC 7591 names; omitted fields take
    ``DEFAULTS``); returns it with its secret (None if it has none). A refusal rolls the
    caller's transaction back."""
    meta = validate({**DEFAULTS, "require_pkce": pkce_default(), **metadata})
    if "client_name" not in meta:
        raise RegistrationError("client_name: required, at most 200 characters",
                                "client_name")
    if "redirect_uris" not in meta:
        raise RegistrationError("redirect_uri: at least one is required", "redirect_uris")
    name, auth_method = meta["client_name"], meta["token_endpoint_auth_method"]
    if client_id is not None and not CLIENT_ID.match(client_id):
        raise RegistrationError("client_id: 3 to 64 characters among A-Z a-z 0-9 . _ -",
                                "client_id")
    client_id = client_id or _new_client_id(name)
    secret = _secret_for(auth_method)
    client = Client(client_id=client_id, secret_hash=digest(secret) if secret else None,
                    registered_by=registered_by,
                    registration_token_hash=registration_token_hash)
    _apply(client, meta)
    _insert_new(client)
    audit.record("client.created", client_id=client_id, actor=actor)
    db.session.commit()
    return client, secret


def _insert_new(client: Client) -> None:
    """Insert ``client`` under an id no client ever had: the primary key refuses a live
    one; the deleted ones are looked up after the insert, so that a deletion committed
    meanwhile (whose row the insert waited for) is seen."""
    db.session.add(client)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise RegistrationError(f"client_id {client.client_id!r} is already registered",
                                "client_id") from None
    if db.session.get(DeletedClient, client.client_id) is not None:
        db.session.rollback()
        raise RegistrationError(f"client_id {client.client_id!r} belonged to a deleted "
                                "client: client ids are never reused", "client_id")


def _secret_for(auth_method: str) -> str | None:
    return secrets.token_urlsafe(32) if auth_method.startswith("client_secret") else None


def _apply(client: Client, meta: dict) -> None:
    for field, value in meta.items():
        setattr(client, FIELDS[field], value)
    if client.token_endpoint_auth_method == "none":
        client.require_pkce = True  # public clients always use PKCE
    client.updated_at = now()


def update_client(client: Client, changes: dict, actor: str) -> str | None:
    """Apply ``changes`` (metadata names). Returns a new secret if the auth method moved to a
    secret-based one; changing away from secrets drops the stored ones."""
    meta = validate(changes)
    merged_method = meta.get("token_endpoint_auth_method", client.token_endpoint_auth_method)
    if merged_method == "private_key_jwt":
        _check_assertion_keys(meta.get("jwks", client.jwks))
    secret = None
    if merged_method != client.token_endpoint_auth_method:
        if merged_method.startswith("client_secret") and not client.secret_hash:
            secret = _secret_for(merged_method)
            client.secret_hash = digest(secret)
        elif not merged_method.startswith("client_secret"):
            client.secret_hash = client.previous_secret_hash = None
    _apply(client, meta)
    audit.record("client.updated", client_id=client.client_id, actor=actor,
                 fields=sorted(meta))
    db.session.commit()
    return secret


#: the longest time an old secret may keep working after a rotation (seconds)
MAX_SECRET_GRACE = 30 * 86400


def rotate_secret(client: Client, grace_seconds: int, actor: str) -> str:
    """A new secret; the old one keeps working for ``grace_seconds``."""
    if not isinstance(grace_seconds, int) or isinstance(grace_seconds, bool) or \
            not 0 <= grace_seconds <= MAX_SECRET_GRACE:
        raise RegistrationError(f"grace_seconds: from 0 to {MAX_SECRET_GRACE}", "grace_seconds")
    if not client.token_endpoint_auth_method.startswith("client_secret"):
        raise RegistrationError("this client authenticates without a secret",
                                "token_endpoint_auth_method")
    secret = secrets.token_urlsafe(32)
    client.previous_secret_hash = client.secret_hash if grace_seconds > 0 else None
    client.previous_secret_expires_at = now() + grace_seconds if grace_seconds > 0 else None
    client.secret_hash = digest(secret)
    client.updated_at = now()
    audit.record("client.secret_rotated", client_id=client.client_id, actor=actor,
                 grace_seconds=grace_seconds)
    db.session.commit()
    return secret


def set_enabled(client: Client, enabled: bool, actor: str) -> None:
    """Disabling refuses the client at once and revokes its tokens and pending codes:
    enabling it again starts from nothing issued."""
    client.enabled, client.updated_at = enabled, now()
    if enabled:
        audit.record("client.enabled", client_id=client.client_id, actor=actor)
    else:
        revoked = revocation.revoke_client(client.client_id)
        audit.record("client.disabled", client_id=client.client_id, actor=actor,
                     tokens_revoked=revoked)
    db.session.commit()


def delete_client(client: Client, actor: str) -> None:
    """Revoke what the client holds and delete it; its id stays taken."""
    client_id = client.client_id
    revoked = revocation.revoke_client(client_id)
    db.session.delete(client)
    db.session.add(DeletedClient(client_id=client_id, deleted_at=now()))
    audit.record("client.deleted", client_id=client_id, actor=actor, tokens_revoked=revoked)
    db.session.commit()


def _new_client_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "client"
    return f"{slug}-{secrets.token_hex(4)}"


def describe(client: Client) -> dict:
    """The client as RFC 7591 metadata (plus psc-idp's own fields); never a secret."""
    return {
        "client_id": client.client_id, "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": client.grant_types, "response_types": ["code"],
        "scope": client.scope, "jwks": client_keys.public_view(client.jwks),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
        "require_pkce": client.require_pkce, "strict_client_auth": client.strict_client_auth,
        "access_token_format": client.access_token_format,
        "refresh_reuse_grace": client.refresh_reuse_grace, "enabled": client.enabled,
        "compat": client.compat, "contacts": client.contacts or [],
        "registered_by": client.registered_by, "client_id_issued_at": client.created_at,
        "secret_rotation_ends_at": client.previous_secret_expires_at
        if client.previous_secret_hash else None,
    }


def find(client_id) -> Client | None:
    """The client, enabled or not; None for an unknown or malformed id (never a query
    the database would refuse, such as text with NUL)."""
    if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
        return None
    return db.session.get(Client, client_id)
