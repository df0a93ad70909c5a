"""Signed checkpoints of the audit chain: made by the sequencer through the key ring's
Signer (a SoftHSM key too, verified against the published JWKS), exported, and checked by
``audit verify``: someone who rewrites records *and* the head, the anchor or the stored
checkpoints is caught by a checkpoint exported before; a purge does not break them."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from psc_idp import audit, audit_sequencer, create_app
from psc_idp.audit import CONTENT, chain_hash
from psc_idp.extensions import db
from psc_idp.keys import jws
from psc_idp.keys.ring import generate_keys

from .plugins.idp import base_settings, running_idp
from .test_audit import run
from .test_keys_hsm import hsm_keys, hsm_settings, hsm_token, kids  # noqa: F401 (fixtures)

DAY = 86400


@pytest.fixture
def app(keys_dir, database_url):
    app = create_app(base_settings(keys_dir, database_url, audit_chain_interval=0))
    yield app
    with app.app_context():
        db.engine.dispose()


def write(app, count: int) -> audit_sequencer.Round:
    """``count`` records, then a sequencer round."""
    with app.app_context():
        for i in range(count):
            audit.record("test.event", id_nat="899700245667", n=i)
            db.session.commit()
        return audit_sequencer.run_once()


def export(app, path) -> str:
    code, out = run(app, "audit", "checkpoints", "--export")
    assert code == 0
    path.write_text(out)
    return str(path)


def attack(app, *statements: str) -> None:
    """Lift every protection, then run ``statements``."""
    with app.app_context(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_checkpoint DISABLE TRIGGER USER"))
        else:
            for name in ("audit_event_no_update", "audit_event_no_delete",
                         "audit_checkpoint_no_update", "audit_checkpoint_no_delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
        for statement in statements:
            conn.execute(text(statement))


def rewrite_from(app, position: int, id_nat: str) -> None:
    """Change the idNat of the record at ``position`` and recompute every hash from there
    and the head, as someone who knows the hash function would."""
    with app.app_context():
        rows = db.session.execute(db.select(audit.AuditEvent.__table__).where(
            audit.AuditEvent.chain_seq >= position).order_by(audit.AuditEvent.chain_seq)) \
            .mappings().all()
        db.session.rollback()
    prev, statements = rows[0]["prev_hash"], [
        f"UPDATE audit_event SET id_nat = '{id_nat}' WHERE id = {rows[0]['id']}"]
    for row in rows:
        content = {name: row[name] for name in CONTENT}
        if row["chain_seq"] == position:
            content["id_nat"] = id_nat
        digest = chain_hash(prev, content)
        statements.append(f"UPDATE audit_event SET prev_hash = '{prev}', hash = '{digest}' "
                          f"WHERE id = {row['id']}")
        prev = digest
    attack(app, *statements, f"UPDATE audit_head SET last_hash = '{prev}'")


def test_checkpoints_are_signed_stored_and_exported(app, tmp_path):
    made = write(app, 3).checkpoint
    assert made and write(app, 2).checkpoint is None  # the next one after 60 s
    code, out = run(app, "audit", "checkpoints")
    assert code == 0 and out.startswith(f"seq {made}\t") and len(out.splitlines()) == 1
    (line,) = Path(export(app, tmp_path / "cp.jsonl")).read_text().splitlines()
    exported = json.loads(line)
    with app.app_context():
        jwks = app.extensions["psc_idp"].keys.jwks()
        claims = jws.decode(exported["token"], jwks, typ="audit-checkpoint+jwt")
        assert exported["jwk"] in jwks["keys"]
        assert claims["chain_seq"] == exported["chain_seq"] == made
        assert claims["hash"] == db.session.scalar(db.select(audit.AuditEvent.hash).where(
            audit.AuditEvent.chain_seq == made))
    code, out = run(app, "audit", "verify", "--checkpoint", str(tmp_path / "cp.jsonl"))
    assert code == 0 and "2 checkpoint(s) matched" in out  # the stored one and the file's


def test_records_and_head_rewritten_are_caught_by_an_exported_checkpoint(app, tmp_path):
    made = write(app, 5).checkpoint
    saved = export(app, tmp_path / "cp.jsonl")
    write(app, 3)
    # with the stored checkpoints left in place, verify alone sees the rewrite
    rewrite_from(app, made - 2, id_nat="899700218896")
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"record seq {made} " in out and "stored checkpoint" in out
    # deleting them is seen too...
    attack(app, "DELETE FROM audit_checkpoint")
    code, out = run(app, "audit", "verify")
    assert code == 1 and "checkpoints were deleted" in out
    # ...but not once the head forgets them: that fools a verification with only the
    # database to go by...
    attack(app, "UPDATE audit_head SET checkpoint_seq = 0")
    assert "audit chain intact" in run(app, "audit", "verify")[1]
    # ...not one against the checkpoint exported before
    code, out = run(app, "audit", "verify", "--checkpoint", saved)
    assert code == 1 and f"record seq {made} " in out and "cp.jsonl:1" in out
    assert "the chain was rewritten" in out


def test_the_tail_removed_and_the_head_rolled_back_are_caught(app, tmp_path):
    made = write(app, 4).checkpoint
    saved = export(app, tmp_path / "cp.jsonl")
    with app.app_context():
        keep = db.session.execute(db.select(audit.AuditEvent.chain_seq, audit.AuditEvent.hash)
                                  .where(audit.AuditEvent.chain_seq == made - 2)).one()
    attack(app, f"DELETE FROM audit_event WHERE chain_seq > {keep.chain_seq}",
           f"UPDATE audit_head SET seq = {keep.chain_seq}, last_hash = '{keep.hash}', "
           "checkpoint_seq = 0",
           "DELETE FROM audit_checkpoint")
    assert "audit chain intact" in run(app, "audit", "verify")[1]
    code, out = run(app, "audit", "verify", "--checkpoint", saved)
    assert code == 1 and "beyond the chain's head" in out and "records were removed" in out


def test_a_deleted_checkpoint_is_caught(app):
    """Each checkpoint names the one before it and the head names the newest: one removed
    from the middle or the end is missing."""
    made, start = [], int(time.time()) - 200
    for step in range(3):  # three checkpoints, a minute apart
        with app.app_context():
            audit.record_many("test.event", [(None, {"n": n}) for n in range(2)])
            db.session.commit()
            made.append(audit_sequencer.run_once(now=start + 61 * step).checkpoint)
    assert all(made) and run(app, "audit", "verify")[0] == 0
    with app.app_context():
        links = db.session.execute(text("SELECT chain_seq, prev_seq FROM audit_checkpoint "
                                        "ORDER BY chain_seq")).all()
    assert [tuple(link) for link in links] == [(made[0], 0), (made[1], made[0]),
                                               (made[2], made[1])]
    attack(app, f"DELETE FROM audit_checkpoint WHERE chain_seq = {made[1]}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and out.count("\n") == 1
    assert f"the checkpoint for seq {made[1]} is missing (stored checkpoint {made[2]} " \
           "follows it): checkpoints were deleted" in out
    attack(app, f"DELETE FROM audit_checkpoint WHERE chain_seq = {made[2]}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"the newest checkpoint is for seq {made[2]} (the head says so), " \
                         f"the newest stored for seq {made[0]}" in out
    # its stored columns cannot be moved to close the gap: they must match its signature
    attack(app, f"UPDATE audit_head SET checkpoint_seq = {made[0]}")
    assert run(app, "audit", "verify")[0] == 0
    attack(app, f"UPDATE audit_checkpoint SET prev_seq = 5 WHERE chain_seq = {made[0]}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and "checkpoints were deleted" in out


def test_a_purge_faked_past_a_recent_checkpoint_is_caught(app, tmp_path):
    write(app, 3)
    saved = export(app, tmp_path / "cp.jsonl")
    write(app, 3)  # chained, no new checkpoint yet
    with app.app_context():
        assert audit.purge(int(time.time()) + 1) > 0  # everything, past the checkpoint
    code, out = run(app, "audit", "verify", "--checkpoint", saved)
    assert code == 1 and "within the retention period" in out


def test_a_purge_keeps_the_checkpoints_of_what_remains(app, tmp_path):
    """A checkpoint older than the retention period before the anchor is passed over; one
    at the anchor still vouches for it; the ones after, for the records after."""
    with app.app_context():
        audit_sequencer.run_once(now=int(time.time()) - 500 * DAY)  # an old checkpoint
    made = write(app, 3).checkpoint  # the last one was long ago: a new one now
    saved = export(app, tmp_path / "cp.jsonl")
    with app.app_context():
        assert audit.purge(int(time.time()) + 1) > 0
        head = db.session.execute(text("SELECT anchor_seq FROM audit_head")).scalar()
    assert head == made
    write(app, 2)
    code, out = run(app, "audit", "verify", "--checkpoint", saved)
    assert code == 0, out
    assert "2 checkpoint(s) matched" in out  # at the anchor: the stored one and the file's


def test_a_forged_stored_checkpoint_is_refused(app, tmp_path, keys_dir):
    made = write(app, 2).checkpoint
    other = tmp_path / "other-keys"
    generate_keys(other, "test-passphrase")
    with app.app_context():
        real = json.loads(Path(export(app, tmp_path / "cp.jsonl")).read_text())
        ring = app.extensions["psc_idp"].keys
        forger = create_app(base_settings(other, "sqlite://", audit_chain_interval=0))
        signer = forger.extensions["psc_idp"].keys.signer("RS256")
        signer.kid = real["kid"]  # posing as the real key
        token = jws.encode({"iss": app.extensions["psc_idp"].settings.issuer,
                            "chain_seq": made, "hash": real["hash"], "iat": real["at"]},
                           signer, typ="audit-checkpoint+jwt")
        assert ring.signer("RS256").kid == real["kid"]
    attack(app, f"UPDATE audit_checkpoint SET token = '{token}' WHERE chain_seq = {made}")
    code, out = run(app, "audit", "verify")
    assert code == 1 and f"stored checkpoint {made}" in out and "do not verify" in out


def test_checkpoints_still_verify_after_the_issuer_moves(app, tmp_path, keys_dir,
                                                        database_url):
    """A deployment that changes its address keeps a verifiable trail: the key vouches for
    a checkpoint, not the issuer it names."""
    write(app, 2)
    saved = export(app, tmp_path / "cp.jsonl")
    moved = create_app(base_settings(keys_dir, database_url, audit_chain_interval=0,
                                     issuer="https://idp.moved.example/auth/realms/x"))
    code, out = run(moved, "audit", "verify", "--checkpoint", saved)
    assert code == 0 and "2 checkpoint(s) matched" in out, out
    with moved.app_context():
        db.engine.dispose()


def test_an_exported_checkpoint_outlives_its_key(app, tmp_path, database_url):
    """Checked with the key the line carries once the key ring no longer publishes it;
    a line without it is refused."""
    write(app, 2)
    saved = export(app, tmp_path / "cp.jsonl")
    other = tmp_path / "rotated-keys"
    generate_keys(other, "test-passphrase")
    later = create_app(base_settings(other, database_url, audit_chain_interval=0))
    code, out = run(later, "audit", "verify", "--checkpoint", saved)
    assert code == 0 and "1 checkpoint(s) matched" in out  # the file's (the stored one's key
    # is not published by this key ring)
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({**json.loads(Path(saved).read_text()), "jwk": None}) + "\n")
    code, out = run(later, "audit", "verify", "--checkpoint", str(bare))
    assert code == 1 and "no longer published" in out
    with later.app_context():
        db.engine.dispose()


def test_no_checkpoint_for_too_long_is_an_alert(app, monkeypatch):
    write(app, 2)
    written = int(time.time()) - 600
    with app.app_context():  # written ten minutes ago, chained, never checkpointed
        with monkeypatch.context() as clock:
            clock.setattr(audit.time, "time", lambda: written)
            audit.record("test.old")
        db.session.commit()
        audit_sequencer.chain_pending()
    code, out = run(app, "audit", "verify")
    assert code == 1 and "no checkpoint for more than 120 s" in out


def test_a_checkpoint_signed_in_the_hsm_verifies_against_the_jwks(
        hsm_keys, database_url, cards, smtp_server, tmp_path):  # noqa: F811
    with running_idp(hsm_keys, database_url, cards, smtp_server, tmp_path,
                     **hsm_settings()) as idp:  # its sequencer signs in the token
        deadline, row = time.monotonic() + 30, None
        while row is None and time.monotonic() < deadline:
            with idp.app.app_context():
                row = db.session.scalars(db.select(audit.AuditCheckpoint)).first()
            time.sleep(0.2)
        assert row is not None and row.kid == kids(hsm_keys)["RS256"]
        claims = jws.decode(row.token, idp.rp().jwks(), typ="audit-checkpoint+jwt")
        assert (claims["chain_seq"], claims["hash"]) == (row.chain_seq, row.hash)
        code, out = run(idp.app, "audit", "verify")
        assert code == 0 and "1 checkpoint(s) matched" in out


def test_the_chain_goes_on_while_the_hsm_is_away(hsm_token, hsm_keys,  # noqa: F811
                                                 database_url, caplog):
    app = create_app(base_settings(hsm_keys, database_url, audit_chain_interval=0,
                                   **hsm_settings()))
    later = int(time.time()) + 120  # a checkpoint is due
    try:
        assert write(app, 1).checkpoint
        shutil.move(hsm_token / "tokens", hsm_token / "unplugged")
        try:
            write(app, 2)
            with app.app_context():
                done = audit_sequencer.run_once(now=later)
        finally:
            shutil.move(hsm_token / "unplugged", hsm_token / "tokens")
        assert (done.chained, done.checkpoint) == (0, None)
        assert "audit checkpoint not signed" in caplog.text
        with app.app_context():
            assert audit.verify().pending == 0  # the two were chained all the same
        deadline, made = time.monotonic() + 30, None
        while made is None and time.monotonic() < deadline:
            with app.app_context():
                made = audit_sequencer.run_once(now=later).checkpoint
            time.sleep(0.5)
        assert made, "no checkpoint once the token is back"
    finally:
        with app.app_context():
            db.engine.dispose()
