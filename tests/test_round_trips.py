"""What each protocol request costs the database, counted on both databases over in-process
requests (Flask's test client): statements (SQLAlchemy's ``before_cursor_execute``, and
the commits and rollbacks that reach a transaction) and, on PostgreSQL, network round
trips read from libpq's own trace of the protocol messages (a round trip is a batch of
messages the client sends before it waits for the server: an implicit ``BEGIN`` is one,
statements sent together in one pipeline are one). Targets: a code exchange or a refresh
in at most 3 round trips, commit included; introspection and userinfo in one."""

from __future__ import annotations

import base64
import ctypes
import secrets
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field

import jwt
import pytest
from sqlalchemy import event

from psc_idp import create_app
from psc_idp.oidc.consts import PATHS

from .plugins.idp import base_settings

ISSUER_PATH = "/auth/realms/esante-wallet"
BASE_URL = "https://localhost:5443"
REDIRECT = "https://rp.example/cb"
ID_NAT = "899700245667"


@dataclass
class Cost:
    statements: list[str] = field(default_factory=list)
    #: PostgreSQL only: client → server message batches followed by a wait (libpq trace)
    round_trips: int | None = None

    def __repr__(self) -> str:
        return f"{len(self.statements)} statements, {self.round_trips} round trips: " + \
            " | ".join(self.statements)


def _in_transaction(dbapi) -> bool:
    info = getattr(dbapi, "info", None)
    if info is not None and hasattr(info, "transaction_status"):  # psycopg
        return info.transaction_status != 0  # IDLE
    return bool(getattr(dbapi, "in_transaction", False))  # sqlite3


@contextmanager
def counted(engine, wire: Wire | None = None):
    """Record what reaches the database while the block runs (``wire``: PostgreSQL's
    messages, for the round trips)."""
    cost = Cost()

    def statement(conn, cursor, sql, params, context, executemany):
        cost.statements.append(" ".join(sql.split())[:80])

    def ended(kind):
        def listener(conn):
            if _in_transaction(conn.connection.driver_connection):
                cost.statements.append(kind)
        return listener

    def reset(dbapi, record, reset_state):
        if _in_transaction(getattr(dbapi, "driver_connection", dbapi)):
            cost.statements.append("ROLLBACK (pool reset)")

    commit, rollback = ended("COMMIT"), ended("ROLLBACK")
    listeners = [(engine, "before_cursor_execute", statement), (engine, "commit", commit),
                 (engine, "rollback", rollback), (engine.pool, "reset", reset)]
    start = wire.mark() if wire else None
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        yield cost
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)
        cost.round_trips = wire.round_trips_since(start) if wire else None


class Wire:
    """libpq's trace of every connection an engine opens from now on (its pool is
    emptied), all in one file: the protocol messages, ``F`` from psc-idp, ``B`` from
    PostgreSQL, including those SQLAlchemy sends on its own (pings, resets)."""

    def __init__(self, engine):
        import psycopg.pq

        self.file = tempfile.TemporaryFile("w+")

        def connect(dbapi, record):
            dbapi.pgconn.trace(self.file.fileno())
            dbapi.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

        event.listen(engine, "connect", connect)
        engine.dispose()

    def close(self) -> None:
        self.file.close()

    def _lines(self) -> list[str]:
        ctypes.CDLL(None).fflush(None)  # libpq writes through C stdio
        self.file.seek(0)
        return self.file.read().splitlines()

    def mark(self) -> int:
        return len(self._lines())

    def round_trips_since(self, mark: int) -> int:
        """Each run of messages from psc-idp followed by an answer is one wait."""
        directions = [line[0] for line in self._lines()[mark:] if line[:2] in ("F\t", "B\t")]
        return sum(1 for before, after in zip(directions, directions[1:], strict=False)
                   if before == "F" and after == "B")


@pytest.fixture
def protocol(keys_dir, database_url):
    """The app in this process, a confidential client and a way to mint its codes (as
    the login flow leaves them)."""
    from psc_idp.clients import create_client
    from psc_idp.extensions import db

    app = create_app(base_settings(keys_dir, database_url))
    with app.app_context():
        client, secret = create_client(name="rt", redirect_uris=[REDIRECT])
        protocol = Protocol(app, client.client_id, secret)
    with app.app_context():  # the session above is closed: no connection is checked out
        protocol.wire = Wire(db.engine) if db.engine.dialect.name == "postgresql" else None
    yield protocol  # requests push their own app context (and remove their session)
    with app.app_context():
        db.engine.dispose()
    if protocol.wire:
        protocol.wire.close()


class Protocol:
    def __init__(self, app, client_id: str, secret: str):
        self.app, self.client_id, self.http = app, client_id, app.test_client()
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self.auth = {"Authorization": f"Basic {basic}"}
        self.sid = secrets.token_urlsafe(24)
        self.wire: Wire | None = None

    @property
    def engine(self):
        from psc_idp.extensions import db

        with self.app.app_context():
            return db.engine

    def code(self, id_nat: str = ID_NAT) -> str:
        from psc_idp.extensions import db
        from psc_idp.oidc.models import AuthorizationCode, LoginSession, digest, now

        code, sid = secrets.token_urlsafe(32), f"{self.sid}-{id_nat}"
        with self.app.app_context():
            if db.session.get(LoginSession, sid) is None:
                db.session.add(LoginSession(sid=sid, id_nat=id_nat, auth_time=now(),
                                            acr="eidas1", amr=["sc", "pin", "mfa"],
                                            auth_mode="CARD", expires_at=now() + 3600))
            db.session.add(AuthorizationCode(
                code_hash=digest(code), grant_id=secrets.token_urlsafe(24),
                client_id=self.client_id, redirect_uri=REDIRECT, scope="openid scope_all",
                id_nat=id_nat, sid=sid, auth_time=now(), acr="eidas1",
                amr=["sc", "pin", "mfa"], auth_mode="CARD", expires_at=now() + 60))
            db.session.commit()
        return code

    def set_reuse_grace(self, seconds: int) -> None:
        from psc_idp import clients

        with self.app.app_context():
            clients.update_client(clients.find(self.client_id), {"refresh_reuse_grace": seconds},
                                  actor="test")

    def post_token(self, http, data: dict):
        return http.post(ISSUER_PATH + PATHS["token_endpoint"], base_url=BASE_URL,
                         headers=self.auth, data=data)

    def exchange(self, code: str) -> dict:
        return self._ok(self.post_token(self.http, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}))

    def refresh(self, refresh_token: str) -> dict:
        return self._ok(self.post_token(self.http, {
            "grant_type": "refresh_token", "refresh_token": refresh_token}))

    def introspect(self, token: str) -> dict:
        return self._ok(self.http.post(ISSUER_PATH + PATHS["introspection_endpoint"],
                                       base_url=BASE_URL, headers=self.auth,
                                       data={"token": token}))

    def userinfo(self, access_token: str) -> dict:
        return self._ok(self.http.get(ISSUER_PATH + PATHS["userinfo_endpoint"],
                                      base_url=BASE_URL,
                                      headers={"Authorization": f"Bearer {access_token}"}))

    @staticmethod
    def _ok(response) -> dict:
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()


def costs(protocol: Protocol) -> dict[str, Cost]:
    """One request of each kind, counted after one of each has warmed the process up."""
    tokens = protocol.exchange(protocol.code())
    protocol.introspect(protocol.refresh(tokens["refresh_token"])["access_token"])
    protocol.userinfo(tokens["access_token"])
    code = protocol.code()
    found, engine, wire = {}, protocol.engine, protocol.wire
    with counted(engine, wire) as found["code exchange"]:
        tokens = protocol.exchange(code)
    with counted(engine, wire) as found["refresh"]:
        refreshed = protocol.refresh(tokens["refresh_token"])
    with counted(engine, wire) as found["introspection"]:
        assert protocol.introspect(refreshed["access_token"])["active"] is True
    with counted(engine, wire) as found["userinfo"]:
        assert protocol.userinfo(refreshed["access_token"])["SubjectRefPro"]
    return found


#: at most this many round trips (statements sent together count once)
TARGETS = {"code exchange": 3, "refresh": 3, "introspection": 1, "userinfo": 1}
#: SQLite is in the process (no round trip, no pipeline): at most this many statements,
#: COMMIT included — the conditional UPDATE, one INSERT per new row, the COMMIT
SQLITE_STATEMENTS = {"code exchange": 4, "refresh": 4, "introspection": 1, "userinfo": 1}


def test_round_trips_per_request(protocol):
    found = costs(protocol)
    for name, cost in found.items():
        print(f"{name}: {cost!r}")
        if cost.round_trips is not None:  # PostgreSQL
            assert cost.round_trips <= TARGETS[name], f"{name}: {cost!r}"
        else:
            assert len(cost.statements) <= SQLITE_STATEMENTS[name], f"{name}: {cost!r}"
        # the audit record is one INSERT: no shared row is read, locked or updated
        assert not [s for s in cost.statements if "audit_head" in s], f"{name}: {cost!r}"
        assert not [s for s in cost.statements if "ROLLBACK" in s], f"{name}: {cost!r}"
        assert not [s for s in cost.statements if "oauth_client" in s], f"{name}: {cost!r}"


def test_the_counter_sees_what_a_request_costs(protocol):
    """The count can fail: a pre-ping, a client read and a rollback show up in it."""
    from psc_idp.extensions import db

    costs(protocol)  # warm
    tokens = protocol.exchange(protocol.code())
    with protocol.app.app_context():
        with counted(protocol.engine, protocol.wire) as cost:
            db.session.execute(db.text("UPDATE client_version SET version = version"))
            db.session.rollback()
    assert "ROLLBACK" in cost.statements and len(cost.statements) == 2, cost
    if protocol.wire is not None:
        assert cost.round_trips == 3, cost  # BEGIN, UPDATE, ROLLBACK
    protocol.app.extensions["psc_idp"].clients.forget()
    with counted(protocol.engine, protocol.wire) as cold:
        protocol.introspect(tokens["access_token"])
    assert [s for s in cold.statements if "oauth_client" in s], cold


def test_read_only_requests_write_nothing_whatever_their_outcome(protocol):
    """Introspection and userinfo, answered or refused (unknown token, wrong secret,
    revoked token, a refresh token at userinfo): one lookup at most, no write, no
    transaction to end."""
    tokens = protocol.exchange(protocol.code())
    protocol.introspect(tokens["access_token"])  # warm
    http, url = protocol.http, ISSUER_PATH + PATHS["introspection_endpoint"]
    revoked = protocol.exchange(protocol.code())
    assert protocol.http.post(ISSUER_PATH + PATHS["revocation_endpoint"], base_url=BASE_URL,
                              headers=protocol.auth,
                              data={"token": revoked["refresh_token"]}).status_code == 200
    userinfo = ISSUER_PATH + PATHS["userinfo_endpoint"]
    requests = {
        "unknown token": lambda: http.post(url, base_url=BASE_URL, headers=protocol.auth,
                                           data={"token": "x" * 40}),
        "wrong secret": lambda: http.post(url, base_url=BASE_URL, data={"token": "x"},
                                          headers={"Authorization": "Basic " + base64.b64encode(
                                              f"{protocol.client_id}:wrong".encode()).decode()}),
        "revoked at userinfo": lambda: http.get(userinfo, base_url=BASE_URL, headers={
            "Authorization": f"Bearer {revoked['access_token']}"}),
        "refresh token at userinfo": lambda: http.get(userinfo, base_url=BASE_URL, headers={
            "Authorization": f"Bearer {tokens['refresh_token']}"}),
    }
    for name, send in requests.items():
        with counted(protocol.engine, protocol.wire) as cost:
            assert send().status_code in (200, 401), name
        assert len(cost.statements) <= 1 and all(
            s.startswith("SELECT") for s in cost.statements), f"{name}: {cost!r}"
        if cost.round_trips is not None:
            assert cost.round_trips <= 1, f"{name}: {cost!r}"


#: demo practitioners (psc_idp/sandbox/demo_directory.txt), none of them first in it
OTHERS = {"899700218896": "MEDECIN0021889", "899700075122": "PHARMACH0007512"}


def test_each_token_names_its_own_practitioner(protocol):
    """The names read with the consumed code or the rotated refresh token are those of the
    code's or token's practitioner (on SQLite a RETURNING clause once read the first
    practitioner of the directory for everyone)."""
    for id_nat, family_name in OTHERS.items():
        tokens = protocol.exchange(protocol.code(id_nat))
        refreshed = protocol.refresh(tokens["refresh_token"])
        for issued in (tokens, refreshed):
            claims = jwt.decode(issued["id_token"], options={"verify_signature": False})
            assert (claims["preferred_username"], claims["family_name"]) == \
                (id_nat, family_name), claims
