"""The audit trail: records appended without a shared lock and chained after commit by the
sequencer; hash-chained, append-only at the database level, verifiable after a purge,
exportable, safe under concurrent writers and sequencers, and free of secrets."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import urlencode

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from psc_idp import audit, audit_sequencer, create_app
from psc_idp.cli import main
from psc_idp.extensions import db
from psc_idp.migrate import alembic_config

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


def chain(app) -> audit_sequencer.Round:
    """What the sequencer does every second in each serving process."""
    with app.app_context():
        return audit_sequencer.run_once()


def _count(app) -> int:
    """Chained records (the template holds the demo directory import's record)."""
    chain(app)
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


def intact(count: int, pending: int = 0) -> str:
    return f"audit chain intact: {count} record(s), 1 checkpoint(s) matched, {pending} " \
           "record(s) not chained yet\n"


def test_records_wait_unchained_until_the_sequencer_chains_them(app):
    before = _count(app)
    _write(app, 3)
    assert run(app, "audit", "verify") == (0, intact(before, pending=3))
    assert chain(app).chained == 3
    assert run(app, "audit", "verify") == (0, intact(before + 3))
    assert chain(app).chained == 0  # nothing twice


def test_chain_verifies_and_detects_an_edited_row(app):
    before = _count(app)
    _write(app, 5)
    chain(app)
    assert run(app, "audit", "verify") == (0, intact(before + 5))
    _tamper(app, f"UPDATE audit_event SET id_nat = '899700218896' "
                 f"WHERE chain_seq = {before + 3}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"seq {before + 3}" in out and "altered" in out


def test_detects_a_deleted_row(app):
    before = _count(app)
    _write(app, 4)
    chain(app)
    _tamper(app, f"DELETE FROM audit_event WHERE chain_seq = {before + 2}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"seq {before + 2} is missing" in out


def test_detects_the_last_rows_removed(app):
    before = _count(app)
    _write(app, 4)
    chain(app)
    _tamper(app, f"DELETE FROM audit_event WHERE chain_seq >= {before + 3}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and "removed" in out


def test_detects_rows_inserted_out_of_chain(app):
    before = _count(app)
    _write(app, 2)
    chain(app)
    insert = ("INSERT INTO audit_event (seq, chain_seq, at, event, outcome, detail, prev_hash, "
              "hash) VALUES (1000000, {chain_seq}, 0, 'login', 'success', '{{}}', 'x', 'y')")
    _tamper(app, insert.format(chain_seq="NULL"))
    code, out = run(app, "audit", "verify")
    assert code == 1 and "is outside the chain" in out
    _tamper(app, "DELETE FROM audit_event WHERE chain_seq IS NULL")
    with app.app_context():
        assert audit.verify().ok
    _tamper(app, insert.format(chain_seq=before + 3))
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"seq {before + 3}" in out and "beyond the chain's head" in out


def test_records_left_unchained_too_long_fail_verification(app, monkeypatch):
    _count(app)
    written = int(time.time()) - 120
    with app.app_context():  # written two minutes ago, and no sequencer ran since
        with monkeypatch.context() as clock:
            clock.setattr(audit.time, "time", lambda: written)
            audit.record("test.old")
        db.session.commit()
    code, out = run(app, "audit", "verify")
    assert code == 1 and "audit chain intact" in out
    assert "1 record(s) unchained for more than 60 s" in out and "sequencer" in out
    chain(app)
    assert run(app, "audit", "verify")[0] == 0


def test_verify_while_others_append_and_chain(app):
    """Records committed and chained during a verification are not mistaken for
    tampering."""
    done = threading.Event()

    def writer():
        while not done.is_set():
            _write(app, 1)

    def sequencer():
        while not done.is_set():
            chain(app)

    threads = [threading.Thread(target=writer), threading.Thread(target=sequencer)]
    for thread in threads:
        thread.start()
    try:
        with app.app_context():
            results = [audit.verify(batch=1) for _ in range(20)]
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert all(result.ok for result in results), [r.problem for r in results]


def test_bulk_records_chain_like_single_ones(app):
    before = _count(app)
    with app.app_context():
        audit.record_many("test.bulk", [(f"89970000000{i}", {"n": i}) for i in range(3)])
        audit.record("test.single")
        db.session.commit()
    assert _count(app) == before + 4


def test_database_refuses_edits_and_deletes(app):
    _write(app, 2)
    chain(app)
    _write(app, 1)
    with app.app_context():
        for sql in ("UPDATE audit_event SET outcome = 'failure'",
                    "UPDATE audit_event SET hash = 'x' WHERE hash IS NOT NULL",
                    "DELETE FROM audit_event",
                    # the sequencer's one UPDATE fills the chain fields of an unchained record,
                    # and changes nothing else
                    "UPDATE audit_event SET chain_seq = 99, prev_hash = 'x', hash = 'y', "
                    "outcome = 'failure' WHERE hash IS NULL",
                    "UPDATE audit_checkpoint SET hash = 'x'", "DELETE FROM audit_checkpoint"):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(text(sql))
            db.session.rollback()


def test_postgresql_refuses_truncate(keys_dir, postgres_server, postgres_template):
    """TRUNCATE exists on PostgreSQL only (SQLite has no such statement)."""
    name = f"audit_truncate_{time.time_ns()}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    app = create_app(base_settings(keys_dir, postgres_server.url(name)))
    with app.app_context():
        for table in ("audit_event", "audit_checkpoint"):
            with pytest.raises(DBAPIError, match="append-only"):
                db.session.execute(text(f"TRUNCATE {table}"))
            db.session.rollback()
        db.session.remove()
        db.engine.dispose()


def test_purge_keeps_the_rest_verifiable(app):
    _write(app, 6)
    chain(app)
    _write(app, 2)  # not chained yet: kept
    with app.app_context():
        assert audit.purge(int(time.time()) + 1) >= 6
    _write(app, 3)
    chain(app)
    code, out = run(app, "audit", "verify")
    # the 2 kept, the purge's own record, the 3 new
    assert code == 0 and out.startswith("audit chain intact: 6 record(s),")
    with app.app_context():  # numbered on from the highest number ever given
        rows = db.session.execute(db.select(audit.AuditEvent.id, audit.AuditEvent.seq,
                                            audit.AuditEvent.event)).all()
    assert [r.event for r in sorted(rows, key=lambda r: r.seq)] == \
        ["test.event"] * 2 + ["audit.purged"] + ["test.event"] * 3
    assert sorted(rows, key=lambda r: r.seq) == sorted(rows, key=lambda r: r.id)


def test_export_json_lines(app):
    _write(app, 3, event="client.created")
    _write(app, 2, event="client.deleted")
    code, out = run(app, "audit", "export", "--since", "2020-01-01", "--event", "client.deleted")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["event"] for r in lines] == ["client.deleted", "client.deleted"]
    assert [r["hash"] for r in lines] == [None, None]  # not chained yet
    assert lines[0]["seq"] < lines[1]["seq"]
    chain(app)
    out = run(app, "audit", "export", "--since", "2020-01-01", "--event", "client.deleted")[1]
    lines = [json.loads(line) for line in out.splitlines()]
    assert all(len(r["hash"]) == 64 for r in lines)
    assert lines[1]["chain_seq"] == lines[0]["chain_seq"] + 1
    code, out = run(app, "audit", "export", "--since", "not a date")
    assert code == 2 and "Traceback" not in out


def test_concurrent_writers_and_sequencers_keep_one_chain(app):
    """Four writers and two sequencers at once: one chain, nothing lost, nothing twice."""
    before = _count(app)
    done = threading.Event()

    def sequencer():
        while not done.is_set():
            chain(app)

    writers = [threading.Thread(target=_write, args=(app, 25)) for _ in range(4)]
    sequencers = [threading.Thread(target=sequencer) for _ in range(2)]
    for thread in writers + sequencers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in sequencers:
        thread.join()
    chain(app)
    code, out = run(app, "audit", "verify")
    assert code == 0 and out.startswith(f"audit chain intact: {before + 100} record(s),")
    assert out.endswith(" 0 record(s) not chained yet\n")


def test_the_migration_keeps_the_chain_both_ways(app):
    """Down to one number per record (the chain's place) and up again, with chained and
    unchained records: the chain verifies on each side."""
    before = _count(app)
    _write(app, 3)
    chain(app)
    _write(app, 2)
    with app.app_context():
        command.downgrade(alembic_config(), "812ebd55c684")
        rows = db.session.execute(text(
            "SELECT seq, prev_hash, hash FROM audit_event ORDER BY seq")).all()
        head = db.session.execute(text("SELECT seq, last_hash FROM audit_head")).one()
        assert [r.seq for r in rows] == list(range(1, before + 6))
        assert all(r.prev_hash == p.hash for p, r in zip(rows, rows[1:], strict=False))
        assert tuple(head) == (rows[-1].seq, rows[-1].hash)
        db.session.commit()
        command.upgrade(alembic_config(), "head")
        db.session.remove()
    _write(app, 1)
    assert _count(app) == before + 6


def _old_style(count: int, event: str) -> None:
    """Records appended as before the sequencer: each moved the head under its row lock
    and was chained at once, its number its place in the chain."""
    for n in range(count):
        last, prev = db.session.execute(text(
            "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, last_hash")).one()
        content = {"seq": last, "at": int(time.time()), "event": event, "outcome": "success",
                   "id_nat": None, "client_id": None, "address": None, "request_id": None,
                   "detail": {"n": n}}
        digest = audit.chain_hash(prev, content)
        db.session.execute(text(
            "INSERT INTO audit_event (seq, at, event, outcome, detail, prev_hash, hash) "
            "VALUES (:seq, :at, :event, :outcome, :detail, :prev, :hash)"),
            {**content, "detail": json.dumps(content["detail"]), "prev": prev,
             "hash": digest})
        db.session.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"),
                           {"h": digest})
    db.session.commit()


def test_an_old_style_chain_upgrades_and_goes_on(app):
    """A chain written before the sequencer, purged once (its anchor moved): after the
    upgrade it verifies as it is, and new records are numbered after it and chained on."""
    _count(app)
    with app.app_context():
        command.downgrade(alembic_config(), "812ebd55c684")
        _old_style(4, "test.old")
        anchor_seq, anchor_hash = db.session.execute(text(
            "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")).one()
        db.session.execute(text("UPDATE audit_head SET purging = 1, anchor_seq = :s, "
                                "anchor_hash = :h WHERE id = 1"),
                           {"s": anchor_seq, "h": anchor_hash})
        db.session.execute(text("DELETE FROM audit_event WHERE seq <= :s"), {"s": anchor_seq})
        db.session.execute(text("UPDATE audit_head SET purging = 0 WHERE id = 1"))
        db.session.commit()
        _old_style(3, "test.kept")
        old_max = db.session.scalar(text("SELECT max(seq) FROM audit_event"))
        db.session.rollback()  # no lock held while the migration alters the table
        command.upgrade(alembic_config(), "head")
        db.session.remove()
        verification = audit.verify()
        assert verification.ok and (verification.checked, verification.pending) == (3, 0)
    _write(app, 2, event="test.new")
    assert chain(app).chained == 2
    with app.app_context():
        rows = db.session.execute(db.select(audit.AuditEvent.seq, audit.AuditEvent.chain_seq)
                                  .order_by(audit.AuditEvent.chain_seq)).all()
        assert [r.chain_seq for r in rows] == list(range(anchor_seq + 1, anchor_seq + 6))
        assert all(r.seq > old_max for r in rows[3:])
    assert run(app, "audit", "verify") == (0, intact(5))


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
        deadline = time.monotonic() + 10  # the server's sequencer chains within a second
        while audit.verify().pending and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = db.session.scalars(db.select(audit.AuditEvent)).all()
        events = {(r.event, r.detail.get("grant_type") or r.detail.get("reason"))
                  for r in rows}
        dump = json.dumps([{**r.content(), "hash": r.hash} for r in rows])
        verification = audit.verify()
        assert verification.ok and verification.pending == 0
    assert {("login", None), ("token.issued", "authorization_code"),
            ("token.issued", "refresh_token"), ("tokens.revoked", "client_revocation"),
            ("logout", None)} <= events
    assert all(r.request_id for r in rows if r.event == "token.issued")
    for secret in secrets_seen:
        assert secret[:16] not in dump
