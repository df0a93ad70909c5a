"""Access keys: bearer tokens that ops issue from the CLI — ``admin`` keys for the admin
API, ``registration`` keys (RFC 7591 initial access tokens) handed to a vendor. Stored as
SHA-256 hashes of 256-bit random values; shown once. An initial access token may carry ops
policy (``clients.policy``) that the clients it registers cannot go below; its uses are
taken atomically, so concurrent registrations never exceed them."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import JSON, BigInteger, Integer, String, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from .. import audit
from ..extensions import db
from ..oidc.models import digest, now

SCOPES = ("admin", "registration")


class AccessKey(db.Model):
    __tablename__ = "access_key"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    #: registrations left for an initial access token (None: no limit)
    uses_left: Mapped[int | None] = mapped_column(Integer)
    #: policy floor of the clients an initial access token registers (clients.policy)
    policy: Mapped[dict | None] = mapped_column(JSON)


def issue(scope: str, label: str, lifetime: int, uses: int | None = None,
          actor: str = "cli", policy: dict | None = None) -> tuple[AccessKey, str]:
    assert scope in SCOPES
    token = f"{'psa' if scope == 'admin' else 'psi'}_{secrets.token_urlsafe(32)}"
    key = AccessKey(id=secrets.token_hex(6), label=label[:100], scope=scope,
                    token_hash=digest(token), created_at=now(), expires_at=now() + lifetime,
                    uses_left=uses, policy=policy or None)
    db.session.add(key)
    audit.record("access_key.issued", actor=actor, key=key.id, scope=scope, label=key.label,
                 expires_at=key.expires_at, policy=policy or {})
    db.session.commit()
    return key, token


def find_valid(token: str, scope: str) -> AccessKey | None:
    """The live key of ``scope`` behind ``token``, or None."""
    if not token or len(token) > 200:
        return None
    key = db.session.scalar(select(AccessKey).where(AccessKey.token_hash == digest(token)))
    if key is None or key.scope != scope or key.revoked_at or key.expires_at < now():
        return None
    if key.uses_left is not None and key.uses_left <= 0:
        return None
    return key


def consume(key: AccessKey) -> bool:
    """Take one registration off ``key`` with one conditional update (``UPDATE … WHERE
    uses_left > 0 RETURNING``): of concurrent requests, only as many as it has uses left
    get True; the use comes back if the caller's transaction rolls back."""
    taken = db.session.execute(
        update(AccessKey).where(AccessKey.id == key.id, AccessKey.revoked_at.is_(None),
                                AccessKey.expires_at >= now(),
                                or_(AccessKey.uses_left.is_(None), AccessKey.uses_left > 0))
        .values(uses_left=AccessKey.uses_left - 1).returning(AccessKey.id)
        .execution_options(synchronize_session=False)).first()
    return taken is not None


def revoke(key_id: str, actor: str = "cli") -> bool:
    key = db.session.get(AccessKey, key_id)
    if key is None or key.revoked_at:
        return False
    key.revoked_at = now()
    audit.record("access_key.revoked", actor=actor, key=key_id, scope=key.scope)
    db.session.commit()
    return True


DURATION = re.compile(r"^(\d+)([smhd]?)$")


def parse_duration(text: str) -> int:
    """``90``, ``30m``, ``12h``, ``7d`` → seconds."""
    found = DURATION.match(text.strip())
    if not found or int(found.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 3600, 30m, 12h or 7d")
    return int(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
