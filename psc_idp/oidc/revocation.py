"""Ending sessions and revoking tokens: the one home that every door calls — logout (OIDC
RP-Initiated Logout 1.0 §2), revocation (RFC 7009 §2.1), a replayed code or a reused refresh
token (RFC 6749 §4.1.2, RFC 9700 §4.14.2), a client disabled or deleted, a practitioner the
directory deactivates. An SSO session ends only in ``end_sessions`` (back-channel logout
notifies from there). Everything is written in the caller's transaction (the caller
commits); each action is audited once: here for logout and revocation, in the caller's own
record (which carries the counts) for client lifecycle and directory changes."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import ColumnElement, and_, or_, update

from .. import audit
from ..extensions import db
from . import backchannel
from .models import AuthorizationCode, LoginSession, Token, now

#: ids per IN (...) list
CHUNK = 500


def live_tokens(current: int) -> ColumnElement[bool]:
    """Tokens not revoked whose access or refresh token has not expired."""
    return and_(Token.revoked_at.is_(None), or_(Token.access_expires_at >= current,
                                                 Token.refresh_expires_at >= current))


def _revoke(condition, current: int) -> Counter:
    """Revoke the live tokens matching ``condition``; how many, by idNat."""
    rows = db.session.execute(
        update(Token).where(condition, live_tokens(current)).values(revoked_at=current)
        .returning(Token.id_nat).execution_options(synchronize_session=False)).all()
    return Counter(id_nat for id_nat, in rows)


def end_sessions(condition, current: int | None = None) -> tuple[list, Counter]:
    """End the live SSO sessions matching ``condition`` and revoke their tokens, with one
    conditional update (a session ends once, whoever else ends it at the same time).
    Returns the ended sessions' ``(sid, id_nat)`` and the tokens revoked, by idNat."""
    current = current or now()
    ended = db.session.execute(
        update(LoginSession).where(condition, LoginSession.ended_at.is_(None))
        .values(ended_at=current).returning(LoginSession.sid, LoginSession.id_nat)
        .execution_options(synchronize_session=False)).all()
    tokens: Counter = Counter()
    sids = [sid for sid, _ in ended]
    for start in range(0, len(sids), CHUNK):
        tokens += _revoke(Token.sid.in_(sids[start:start + CHUNK]), current)
        backchannel.enqueue(sids[start:start + CHUNK], current)
    return ended, tokens


def end_session(sid: str | None) -> bool:
    """Logout: end one SSO session and revoke its tokens; audited as ``logout``."""
    if not sid:
        return False
    ended, tokens = end_sessions(LoginSession.sid == sid)
    for _, id_nat in ended:
        audit.record("logout", id_nat=id_nat, sid=sid, tokens_revoked=tokens[id_nat])
    return bool(ended)


def end_practitioner_sessions(ids: list[str], current: int) -> tuple[dict, dict]:
    """Directory deactivation: end the live sessions and revoke the live tokens of the
    practitioners ``ids``; how many of each, by idNat (the caller's record carries them)."""
    ended, tokens = end_sessions(LoginSession.id_nat.in_(ids), current)
    tokens += _revoke(Token.id_nat.in_(ids), current)  # tokens outliving their session
    return dict(Counter(id_nat for _, id_nat in ended)), dict(tokens)


def revoke_client(client_id: str, current: int | None = None) -> int:
    """A client disabled or deleted: revoke every live token it holds and void its unused
    authorization codes; how many tokens (the caller's record carries it)."""
    current = current or now()
    db.session.execute(
        update(AuthorizationCode).where(AuthorizationCode.client_id == client_id,
                                        AuthorizationCode.used_at.is_(None),
                                        AuthorizationCode.expires_at >= current)
        .values(expires_at=current - 1).execution_options(synchronize_session=False))
    return sum(_revoke(Token.client_id == client_id, current).values())


def revoke_grant(grant_id: str, *, reason: str, client_id: str | None = None) -> int:
    """Everything issued from one authorization code (a replayed code, a reused refresh
    token, RFC 7009 revocation of a refresh token); audited as ``tokens.revoked``."""
    count = db.session.execute(
        update(Token).where(Token.grant_id == grant_id, Token.revoked_at.is_(None))
        .values(revoked_at=now()).execution_options(synchronize_session=False)).rowcount
    audit.record("tokens.revoked", "success", client_id=client_id, reason=reason, count=count)
    return count


def revoke_access_token(row) -> None:
    """RFC 7009 revocation of an access token (``row``: its ``oauth_token`` row): it
    expires now (its refresh token, in the same row, stays valid); audited as
    ``token.revoked``."""
    db.session.execute(
        update(Token).where(Token.id == row.id, Token.access_expires_at >= now())
        .values(access_expires_at=now() - 1).execution_options(synchronize_session=False))
    audit.record("token.revoked", client_id=row.client_id, kind="access_token")
