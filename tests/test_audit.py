"""The audit trail: hash-chained, append-only at the database level, verifiable after a
purge, exportable, safe under concurrent writers, and free of secrets."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from psc_idp import audit, create_app
from psc_idp.cli import main
from psc_idp.extensions import db

from .plugins.idp import base_settings
from .support import code_from


@pytest.fixture
def app(keys_dir, database_url):
    app = create_app(base_settings(keys_dir, database_url))
    yield app
    with app.app_context():
        db.engine.dispose()


def run(app, *args):
    result = app.test_cli_runner().invoke(main, list(args))
    return result.exit_code, result.output


def _count(app) -> int:
    with app.app_context():
        return audit.verify().checked


def _write(app, count: int, event: str = "test.event") -> None:
    with app.app_context():
        for i in range(count):
            audit.record(event, id_nat="899700245667", n=i)
            db.session.commit()


def _tamper(app, sql: str) -> None:
    """What an attacker with database access would do: lift the protection, then edit."""
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as conn:
            if postgres:
                conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER "
                                  "audit_event_append_only"))
            else:
                conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
                conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))
            conn.execute(text(sql))


def test_chain_verifies_and_detects_an_edited_row(app):
    before = _count(app)  # the template already holds the demo directory import's record
    _write(app, 5)
    assert run(app, "audit", "verify") == (0, f"audit chain intact: {before + 5} record(s)\n")
    _tamper(app, f"UPDATE audit_event SET id_nat = '899700218896' WHERE seq = {before + 3}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"seq {before + 3}" in out and "altered" in out


def test_detects_a_deleted_row(app):
    before = _count(app)
    _write(app, 4)
    _tamper(app, f"DELETE FROM audit_event WHERE seq = {before + 2}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"seq {before + 2} is missing" in out


def test_detects_the_last_rows_removed(app):
    before = _count(app)
    _write(app, 4)
    _tamper(app, f"DELETE FROM audit_event WHERE seq >= {before + 3}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and "removed" in out


def test_detects_rows_inserted_out_of_chain(app):
    before = _count(app)
    _write(app, 2)
    insert = ("INSERT INTO audit_event (seq, at, event, outcome, detail, prev_hash, hash) "
              "VALUES ({seq}, 0, 'login', 'success', '{{}}', 'x', 'y')")
    _tamper(app, insert.format(seq="NULL"))
    code, out = run(app, "audit", "verify")
    assert code == 1 and "is outside the chain (no seq)" in out
    with app.app_context():
        db.session.execute(text("DELETE FROM audit_event WHERE seq IS NULL"))
        db.session.commit()
        assert audit.verify().ok
    _tamper(app, insert.format(seq=before + 3))
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"seq {before + 3}" in out and "beyond the chain's head" in out


def test_verify_while_others_append(app):
    """Records committed during a verification are not mistaken for tampering."""
    done = threading.Event()

    def writer():
        while not done.is_set():
            _write(app, 1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with app.app_context():
            results = [audit.verify(batch=1) for _ in range(20)]
    finally:
        done.set()
        thread.join()
    assert all(result.ok for result in results), [r.problem for r in results]


def test_bulk_records_chain_like_single_ones(app):
    before = _count(app)
    with app.app_context():
        audit.record_many("test.bulk", [(f"89970000000{i}", {"n": i}) for i in range(3)])
        audit.record("test.single")
        db.session.commit()
        assert audit.verify().ok
    assert _count(app) == before + 4


def test_database_refuses_edits_and_deletes(app):
    _write(app, 2)
    with app.app_context():
        for sql in ("UPDATE audit_event SET outcome = 'failure'", "DELETE FROM audit_event"):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(text(sql))
            db.session.rollback()


def test_postgresql_refuses_truncate(keys_dir, postgres_server, postgres_template):
    """TRUNCATE exists on PostgreSQL only (SQLite has no such statement)."""
    name = f"audit_truncate_{time.time_ns()}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    app = create_app(base_settings(keys_dir, postgres_server.url(name)))
    with app.app_context():
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text("TRUNCATE audit_event"))
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()


def test_purge_keeps_the_rest_verifiable(app):
    _write(app, 6)
    with app.app_context():
        assert audit.purge(int(time.time()) + 1) >= 6
    _write(app, 3)
    code, out = run(app, "audit", "verify")
    assert code == 0 and "4 record(s)" in out  # 3 new + the purge's own record


def test_export_json_lines(app):
    _write(app, 3, event="test.a")
    _write(app, 2, event="test.b")
    code, out = run(app, "audit", "export", "--since", "2020-01-01", "--event", "test.b")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["event"] for r in lines] == ["test.b", "test.b"]
    assert all(len(r["hash"]) == 64 for r in lines)
    code, out = run(app, "audit", "export", "--since", "not a date")
    assert code == 2 and "Traceback" not in out


def test_concurrent_writers_keep_one_chain(app):
    def writer():
        _write(app, 25)

    before = _count(app)
    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert run(app, "audit", "verify") == (0, f"audit chain intact: {before + 100} record(s)\n")


def test_a_real_login_leaves_records_without_secrets(idp, browser, demo_card):
    rp = idp.rp()
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]
    tokens = rp.exchange(code).json()
    refreshed = rp.refresh(tokens["refresh_token"]).json()
    rp.post("revocation_endpoint", {"token": refreshed["refresh_token"]})
    logout = browser.get(rp.url("end_session_endpoint") + "?" + urlencode({
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": idp.logout_uri}))
    assert logout.status_code == 302
    secrets_seen = [code, rp.client_secret, rp.verifier, tokens["access_token"],
                    tokens["refresh_token"], tokens["id_token"], refreshed["refresh_token"],
                    refreshed["access_token"], refreshed["id_token"]]
    with idp.app.app_context():
        rows = db.session.scalars(db.select(audit.AuditEvent)).all()
        events = {(r.event, r.detail.get("grant_type") or r.detail.get("reason"))
                  for r in rows}
        dump = json.dumps([{**r.content(), "hash": r.hash} for r in rows])
        assert audit.verify().ok
    assert {("login", None), ("token.issued", "authorization_code"),
            ("token.issued", "refresh_token"), ("tokens.revoked", "client_revocation"),
            ("logout", None)} <= events
    assert all(r.request_id for r in rows if r.event == "token.issued")
    for secret in secrets_seen:
        assert secret[:16] not in dump
