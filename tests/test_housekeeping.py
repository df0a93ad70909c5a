"""Housekeeping deletes what expired, in batches, and nothing that is still needed (a
rotated refresh token stays until it would have expired: its reuse must still be seen)."""

from __future__ import annotations

from psc_idp import create_app
from psc_idp.ecps.models import LoginRequest
from psc_idp.extensions import db
from psc_idp.housekeeping import purge
from psc_idp.oidc.models import AssertionJti, AuthorizationCode, LoginSession, Token, now

from .plugins.idp import base_settings


def _token(jti, access_exp, refresh_exp, rotated=None):
    return Token(jti=jti, grant_id="g", client_id="c", id_nat="899700245667", sid="s",
                 scope="openid", auth_time=0, acr="eidas1", amr=["sc"], auth_mode="CARD",
                 refresh_hash=f"h{jti}", issued_at=0, access_expires_at=access_exp,
                 refresh_expires_at=refresh_exp, rotated_at=rotated)


def test_purge_removes_only_what_expired(keys_dir, database_url):
    app = create_app(base_settings(keys_dir, database_url))
    t = now()
    with app.app_context():
        for i in range(25):
            db.session.add(AuthorizationCode(
                code_hash=f"old{i}", grant_id="g", client_id="c", redirect_uri="https://x/cb",
                scope="openid", id_nat="899700245667", sid="s", auth_time=0, acr="eidas1",
                amr=["sc"], auth_mode="CARD", expires_at=t - 7200))
        db.session.add(AuthorizationCode(
            code_hash="live", grant_id="g", client_id="c", redirect_uri="https://x/cb",
            scope="openid", id_nat="899700245667", sid="s", auth_time=0, acr="eidas1",
            amr=["sc"], auth_mode="CARD", expires_at=t + 60))
        db.session.add_all([
            _token("dead", t - 7200, t - 7200),
            _token("rotated-but-live", t - 7200, t + 900, rotated=t - 7000),
            _token("live", t + 100, t + 1800),
        ])
        db.session.add_all([
            LoginSession(sid="ended", id_nat="899700245667", auth_time=0, acr="eidas1",
                         amr=["sc"], auth_mode="CARD", expires_at=t + 100, ended_at=t - 7200),
            LoginSession(sid="open", id_nat="899700245667", auth_time=0, acr="eidas1",
                         amr=["sc"], auth_mode="CARD", expires_at=t + 100),
        ])
        # a two-column key: client and jti
        db.session.add_all([AssertionJti(client_id="c", jti=f"j{i}", expires_at=t - 10)
                            for i in range(3)] + [
                           AssertionJti(client_id="c", jti="live", expires_at=t + 60)])
        db.session.add(LoginRequest(id="r", tx_id="t", id_nat="x", real=False, code="12",
                                    candidates=["12"], nonce="n", created_at=0,
                                    expires_at=t - 7200))
        db.session.commit()

        counts = purge(batch=10)
        assert counts["authorization codes"] == 25 and counts["tokens"] == 1
        assert counts["sessions"] == 1 and counts["e-CPS login requests"] == 1
        assert counts["assertion jtis"] == 3
        assert [a.jti for a in db.session.scalars(db.select(AssertionJti))] == ["live"]
        assert [c.code_hash for c in db.session.scalars(db.select(AuthorizationCode))] == [
            "live"]
        assert sorted(tok.jti for tok in db.session.scalars(db.select(Token))) == [
            "live", "rotated-but-live"]
        assert purge()["tokens"] == 0  # nothing left to do
    with app.app_context():
        db.engine.dispose()  # after the request-less context gave its connection back
