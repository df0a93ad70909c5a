"""Relying parties: their whole life — create, update, rotate secret, disable/enable,
delete — with their metadata checked by ``clients.metadata``. The CLI, the admin
API and dynamic registration (RFC 7591/7592) all go through these functions, so the rules
and the audit records are the same whatever the door. Secrets are shown once, stored hashed.
Disabling a client revokes its tokens (enabling it again does not bring them back);
deleting it revokes them too and keeps its id, which is never given to another client.
Every change commits with the version that makes every process drop its cached clients
(``clients.cache``)."""

from __future__ import annotations

import re
import secrets

from sqlalchemy.exc import IntegrityError

from .. import audit
from ..extensions import db
from ..oidc import fapi, revocation
from ..oidc.consts import CIBA_GRANT_TYPE, GRANT_TYPES
from ..oidc.models import Client, digest, now
from ..settings import current as settings
from . import cache
from . import jwks as client_keys
from .metadata import (  # noqa: F401 - the package's API
    ACCESS_TOKEN_FORMATS,
    CLIENT_ID,
    DEFAULTS,
    FIELDS,
    MAX_URIS,
    TLS_SUBJECT_FIELDS,
    RegistrationError,
    check_assertion_keys,
    check_ciba,
    check_mtls,
    check_uri,
    validate,
)
from .models import DeletedClient


def pkce_default() -> bool:
    """``require_pkce`` of a new confidential client: PSC requires no PKCE (psc.md §10),
    ops may (``pkce_required_for_confidential``). Public clients always need it."""
    return settings().pkce_required_for_confidential


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
    _commit_change()
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
    try:
        check_ciba(client)
        refused = fapi.check_client(client)
        if refused:
            raise RegistrationError(refused, "fapi2_security_profile")
        check_mtls(client)
    except RegistrationError:
        db.session.rollback()  # nothing of the refused change stays
        raise


def update_client(client: Client, changes: dict, actor: str) -> str | None:
    """Apply ``changes`` (metadata names). Returns a new secret if the auth method moved to a
    secret-based one; changing away from secrets drops the stored ones."""
    meta = validate(changes)
    merged_method = meta.get("token_endpoint_auth_method", client.token_endpoint_auth_method)
    if merged_method == "private_key_jwt":
        check_assertion_keys(meta.get("jwks", client.jwks))
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
    _commit_change()
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
    _commit_change()
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
    _commit_change()


def delete_client(client: Client, actor: str) -> None:
    """Revoke what the client holds and delete it; its id stays taken."""
    client_id = client.client_id
    revoked = revocation.revoke_client(client_id)
    db.session.delete(client)
    db.session.add(DeletedClient(client_id=client_id, deleted_at=now()))
    audit.record("client.deleted", client_id=client_id, actor=actor, tokens_revoked=revoked)
    _commit_change()


def _commit_change() -> None:
    """Commit a client change with the version bump that tells every process."""
    cache.changed()
    db.session.commit()
    cache.forget()


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
        "grant_types": [*client.grant_types, *([CIBA_GRANT_TYPE]
                        if client.backchannel_token_delivery_mode else [])],
        "response_types": ["code"],
        "scope": client.scope, "jwks": client_keys.public_view(client.jwks),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
        "require_pkce": client.require_pkce, "strict_client_auth": client.strict_client_auth,
        "access_token_format": client.access_token_format,
        "refresh_reuse_grace": client.refresh_reuse_grace, "enabled": client.enabled,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        **{field: getattr(client, field) for field in TLS_SUBJECT_FIELDS
           if getattr(client, field)},
        "tls_client_certificate_bound_access_tokens":
            client.tls_client_certificate_bound_access_tokens,
        "token_exchange_audiences": list(client.token_exchange_audiences or []),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "backchannel_token_delivery_mode": client.backchannel_token_delivery_mode,
        "backchannel_client_notification_endpoint":
            client.backchannel_client_notification_endpoint,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "fapi2_security_profile": client.fapi2_security_profile,
        "request_object_signing_alg": client.request_object_signing_alg,
        "strict_request_objects": client.strict_request_objects,
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
