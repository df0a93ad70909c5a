"""Revoking what was issued: a whole grant (replayed code, reused refresh token,
revocation of a refresh token per RFC 7009 §2.1), or everything of an SSO session."""

from __future__ import annotations

from .. import audit
from .models import Token, now


def revoke_grant(grant_id: str, *, reason: str, client_id: str | None = None) -> int:
    count = Token.query.filter(Token.grant_id == grant_id, Token.revoked_at.is_(None)).update(
        {Token.revoked_at: now()}, synchronize_session=False
    )
    audit.record("tokens.revoked", "success", client_id=client_id, reason=reason, count=count)
    return count


def revoke_session_tokens(sid: str) -> int:
    return Token.query.filter(Token.sid == sid, Token.revoked_at.is_(None)).update(
        {Token.revoked_at: now()}, synchronize_session=False
    )

