"""The audit sequencer on PostgreSQL, with real concurrent transactions and processes:
writers in several processes never wait on each other (pg_stat_activity and pg_locks
sampled while they append), a record whose transaction commits late is chained, the
sequencer's turn moves to another process when the one holding it dies mid-round, and
the background thread rides out a database outage with one warning."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psycopg
import pytest

from psc_idp import audit, audit_sequencer, create_app
from psc_idp.extensions import db

from .plugins.idp import _migrate, base_settings, running_idp
from .plugins.postgres import PostgresServer

WRITER = textwrap.dedent("""
    import json, sys, time
    from psc_idp import audit, create_app
    from psc_idp.extensions import db
    app = create_app(json.loads(sys.argv[1]))
    seconds, hold, written = float(sys.argv[2]), float(sys.argv[3]), 0
    with app.app_context():
        audit.record("test.warm-up")  # connected before the start
        db.session.commit()
        print("ready", flush=True)
        sys.stdin.readline()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            audit.record("test.concurrent", n=written)
            db.session.flush()
            time.sleep(hold)  # the transaction stays open while the others append
            db.session.commit()
            written += 1
    print(written, flush=True)
""")

SEQUENCER = textwrap.dedent("""
    import json, sys
    from psc_idp import audit_sequencer, create_app
    app = create_app(json.loads(sys.argv[1]))
    audit_sequencer.start(app)
    print("ready", flush=True)
    sys.stdin.read()
""")


@pytest.fixture
def postgres_url(postgres_server, postgres_template):
    name = f"audit_seq_{time.time_ns()}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    return postgres_server.url(name)


@pytest.fixture
def app(keys_dir, postgres_url):
    app = create_app(base_settings(keys_dir, postgres_url, audit_chain_interval=0))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def child(script: str, settings: dict, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", script, json.dumps(settings), *args],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def named(url: str, name: str) -> str:
    return f"{url}?application_name={name}"


def libpq(url: str) -> str:
    return url.replace("+psycopg", "")


def pending(app) -> int:
    with app.app_context():
        return audit.verify().pending


def test_an_open_transaction_with_a_record_holds_no_one_up(app):
    """Transaction A has written its record and stays open; B writes its own and commits
    meanwhile, with a lock timeout of one second (behind a lock on one shared row, as when
    every record moved the chain's head, B would wait for A and fail)."""
    flushed, finish = threading.Event(), threading.Event()

    def first():
        with app.app_context():
            audit.record("test.first")
            db.session.flush()
            flushed.set()
            finish.wait(30)
            db.session.commit()

    writer = threading.Thread(target=first)
    writer.start()
    try:
        assert flushed.wait(30)
        with app.app_context():
            db.session.execute(db.text("SET LOCAL lock_timeout = '1s'"))
            started = time.monotonic()
            audit.record("test.second")
            audit.record_many("test.second", [(None, {"n": 1})])
            db.session.commit()
            assert time.monotonic() - started < 1
    finally:
        finish.set()
        writer.join()
    with app.app_context():
        assert audit_sequencer.run_once().chained >= 3
        verification = audit.verify()
        assert verification.ok and verification.pending == 0


def test_a_late_commit_is_chained(app):
    """Record A is written first and commits last, after B was chained: A is chained in
    the next round, after B; nothing is lost and the chain verifies."""
    flushed, finish = threading.Event(), threading.Event()

    def late():
        with app.app_context():
            audit.record("test.late")
            db.session.flush()  # inserted, its number taken, not committed
            flushed.set()
            finish.wait(30)
            db.session.commit()

    with app.app_context():
        audit_sequencer.run_once()  # the template's record
    writer = threading.Thread(target=late)
    writer.start()
    assert flushed.wait(30)
    with app.app_context():
        audit.record("test.early")
        db.session.commit()
        assert audit_sequencer.run_once().chained == 1  # B only: A is not visible
        finish.set()
        writer.join()
        assert audit_sequencer.run_once().chained == 1
        rows = {r.event: r for r in db.session.scalars(db.select(audit.AuditEvent).where(
            audit.AuditEvent.event.in_(["test.late", "test.early"])))}
        late_row, early = rows["test.late"], rows["test.early"]
        assert late_row.seq < early.seq and late_row.chain_seq == early.chain_seq + 1
        verification = audit.verify()
        assert verification.ok and verification.pending == 0, verification.problem


def _lock_waits(probe) -> list[tuple]:
    return probe.execute(
        "SELECT a.application_name, a.wait_event_type, a.wait_event, a.state, l.locktype, "
        "l.relation::regclass::text FROM pg_stat_activity a LEFT JOIN pg_locks l "
        "ON l.pid = a.pid AND NOT l.granted WHERE a.datname = current_database() "
        "AND a.application_name LIKE 'audit-%'").fetchall()


def test_writers_in_several_processes_never_wait_on_each_other(keys_dir, postgres_url):
    """Six processes append, each holding its transaction open 20 ms after its INSERT,
    while a sequencer chains: sampled every 10 ms, no backend ever waits on a lock. The
    same probe does see a wait on one hot row (the control)."""
    settings = base_settings(keys_dir, named(postgres_url, "audit-writer"),
                             audit_chain_interval=0)
    writers = [child(WRITER, settings, "4", "0.02") for _ in range(6)]
    app = create_app(base_settings(keys_dir, named(postgres_url, "audit-sequencer")))
    audit_sequencer.start(app)
    samples, overlapping, waits = 0, 0, []
    with psycopg.connect(libpq(postgres_url), autocommit=True) as probe:
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        while any(w.poll() is None for w in writers):
            rows = _lock_waits(probe)
            samples += 1
            waits += [r for r in rows if r[1] == "Lock" or r[4] is not None]
            overlapping += sum(r[3] == "idle in transaction" for r in rows
                               if r[0] == "audit-writer") >= 2
            time.sleep(0.01)
        written = sum(int(w.communicate()[0].split()[-1]) for w in writers)
        audit_sequencer.stop(app)
        assert waits == [] and samples > 100
        assert overlapping > samples / 4  # several open transactions at once, most of the time
        assert written > 300
        _control(probe, libpq(postgres_url))
    with app.app_context():
        audit_sequencer.run_once()
        verification = audit.verify()
        assert verification.ok and verification.pending == 0
        assert verification.checked >= written + 6
        db.engine.dispose()


def _control(probe, url: str) -> None:
    """Two transactions updating one row: the second waits, and the probe sees it."""
    with psycopg.connect(url, application_name="audit-control") as first, \
            psycopg.connect(url, application_name="audit-control") as second:
        first.execute("UPDATE audit_head SET purging = purging WHERE id = 1")
        blocked = threading.Thread(target=second.execute, args=(
            "UPDATE audit_head SET purging = purging WHERE id = 1",))
        blocked.start()
        deadline, seen = time.monotonic() + 10, []
        while not seen and time.monotonic() < deadline:
            seen = [r for r in _lock_waits(probe) if r[1] == "Lock"]
        first.rollback()
        blocked.join()
        second.rollback()
    assert seen and seen[0][2] == "transactionid"


def _turn_holder(probe) -> tuple[int, str] | None:
    key = audit_sequencer.LOCK_KEY
    return probe.execute(
        "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a "
        "USING (pid) WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s "
        "AND l.objid::bigint = %s AND l.objsubid = 1", (key >> 32, key & 0xFFFFFFFF)).fetchone()


def test_the_turn_moves_when_the_process_holding_it_dies(app, keys_dir, postgres_url):
    """Two processes run sequencers. The one caught holding the turn is frozen mid-round:
    the other cannot chain meanwhile (one at a time); once the frozen one is killed, the
    other chains everything within seconds."""
    sequencers = {f"audit-sequencer-{i}": child(SEQUENCER, base_settings(
        keys_dir, named(postgres_url, f"audit-sequencer-{i}"))) for i in range(2)}
    done = threading.Event()

    def writer():  # enough records that a round takes a while
        with app.app_context():
            while not done.is_set():
                audit.record_many("test.load", [(None, {"n": n}) for n in range(300)])
                db.session.commit()
                time.sleep(0.3)

    load = threading.Thread(target=writer)
    load.start()
    frozen = None
    try:
        with psycopg.connect(libpq(postgres_url), autocommit=True) as probe:
            deadline = time.monotonic() + 60
            while frozen is None and time.monotonic() < deadline:
                holder = _turn_holder(probe)
                if holder is None:
                    time.sleep(0.002)
                    continue
                process = sequencers[holder[1]]
                process.send_signal(signal.SIGSTOP)
                if _turn_holder(probe) == holder:
                    frozen = holder[1]
                else:  # its round ended first
                    process.send_signal(signal.SIGCONT)
            assert frozen, "no sequencer seen holding the turn"
            done.set()
            load.join()
            with app.app_context():
                audit.record("test.after")
                db.session.commit()
            time.sleep(3)  # the other sequencer tries three rounds, and skips them
            assert pending(app) > 0 and _turn_holder(probe)[1] == frozen
            sequencers[frozen].send_signal(signal.SIGKILL)
            deadline = time.monotonic() + 20
            while pending(app) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert pending(app) == 0, "the surviving sequencer did not take over"
            assert (_turn_holder(probe) or (0, ""))[1] != frozen
    finally:
        done.set()
        load.join()
        for process in sequencers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
            process.communicate(timeout=10)  # and its pipes closed
    with app.app_context():
        assert audit.verify().ok


def test_the_thread_rides_out_a_database_outage(keys_dir, caplog):
    """Rounds fail while PostgreSQL is down: one warning, no stack trace, one line when
    it is back; records written after are chained."""
    server = PostgresServer()
    server.start()
    server.execute("CREATE DATABASE psc")
    _migrate(base_settings(keys_dir, server.url("psc")))
    app = create_app(base_settings(keys_dir, server.url("psc")))
    caplog.set_level(logging.WARNING, logger="psc_idp.audit")
    audit_sequencer.start(app)
    try:
        _wait_chained(app)
        server.pause()
        time.sleep(4)  # four rounds fail
        server.resume()
        with app.app_context():
            audit.record("test.after-outage")
            db.session.commit()
        _wait_chained(app)
    finally:
        audit_sequencer.stop(app)
        with app.app_context():
            db.engine.dispose()
        server.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "psc_idp.audit"]
    assert len(messages) == 2, messages
    assert messages[0].startswith("audit sequencer: chaining failed, retrying every 1 s")
    assert messages[1] == "audit sequencer: chaining works again"
    assert not any(r.exc_info for r in caplog.records)


def _wait_chained(app) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if pending(app) == 0:
                return
        except Exception:  # the database coming back
            pass
        time.sleep(0.2)
    raise AssertionError("records not chained")


def test_sequencer_start_is_once_per_process(keys_dir, postgres_url):
    app = create_app(base_settings(keys_dir, postgres_url))
    first = audit_sequencer.start(app)
    assert audit_sequencer.start(app) is first and first.alive
    audit_sequencer.stop(app)
    assert not first.alive and os.getpid() == first.pid
    quiet = create_app(base_settings(keys_dir, postgres_url, audit_chain_interval=0))
    assert audit_sequencer.start(quiet) is None
    for one in (app, quiet):
        with one.app_context():
            db.engine.dispose()


def test_a_served_process_runs_its_sequencer_and_stops_it(keys_dir, database_url, cards,
                                                          smtp_server, tmp_path):
    """``psc-idp run``'s listeners start the sequencer (it chains what a login writes) and
    stop it with them: no thread is left behind."""
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path) as idp:
        sequencer = idp.app.extensions["psc_idp.audit_sequencer"]
        assert sequencer.alive
        with idp.app.app_context():
            audit.record("test.served")
            db.session.commit()
        _wait_chained(idp.app)
    assert not sequencer.alive and "psc_idp.audit_sequencer" not in idp.app.extensions
