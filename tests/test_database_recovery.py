"""No ping per request, and still no failed request after PostgreSQL restarts: a pooled
connection the server closed while it was idle is replaced at checkout, without a round
trip; a connection that dies under a request gives that request a clean 503 and the next
one reconnects. In process, on a PostgreSQL server of the test's own."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import event, text

from psc_idp import create_app
from psc_idp.oidc.consts import PATHS

from .plugins.idp import _migrate, base_settings
from .plugins.postgres import PostgresServer
from .test_round_trips import BASE_URL, ISSUER_PATH, REDIRECT, Wire, counted


@pytest.fixture
def own_postgres(keys_dir):
    server = PostgresServer()
    server.start()
    server.execute("CREATE DATABASE psc")
    _migrate(base_settings(keys_dir, server.url("psc")))
    yield server
    server.stop()


@pytest.fixture
def serving(keys_dir, own_postgres):
    from psc_idp.clients import create_client
    from psc_idp.extensions import db

    app = create_app(base_settings(keys_dir, own_postgres.url("psc")))
    with app.app_context():
        client, secret = create_client(name="recovery", redirect_uris=[REDIRECT])
        basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    http = app.test_client()

    def introspect():
        return http.post(ISSUER_PATH + PATHS["introspection_endpoint"], base_url=BASE_URL,
                         headers={"Authorization": f"Basic {basic}"},
                         data={"token": "not-a-token"})

    yield app, introspect
    with app.app_context():
        db.engine.dispose()


def engine_of(app):
    from psc_idp.extensions import db

    with app.app_context():
        return db.engine


def test_a_restart_costs_no_request(serving, own_postgres):
    app, introspect = serving
    assert introspect().status_code == 200  # a pooled connection now
    own_postgres.pause()
    own_postgres.resume()
    assert introspect().status_code == 200


def test_no_round_trip_before_a_request(serving):
    app, introspect = serving
    wire = Wire(engine_of(app))
    try:
        introspect()
        with counted(engine_of(app), wire) as cost:
            assert introspect().status_code == 200
        assert cost.round_trips == 1, cost  # the token lookup: no ping, no rollback
    finally:
        wire.close()


def test_a_connection_dying_under_a_request_is_one_503(serving, own_postgres):
    app, introspect = serving
    assert introspect().status_code == 200
    engine = engine_of(app)

    killed = []

    def killed_under(conn, cursor, statement, parameters, context, executemany):
        if killed:
            return
        killed.append(conn.connection.driver_connection.info.backend_pid)
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": killed[0]})

    event.listen(engine, "before_cursor_execute", killed_under)
    try:
        failed = introspect()
    finally:
        event.remove(engine, "before_cursor_execute", killed_under)
    assert failed.status_code == 503
    assert failed.get_json()["error"] == "temporarily_unavailable"
    assert introspect().status_code == 200


def test_an_idle_connection_terminated_by_the_server_costs_no_request(serving, own_postgres):
    app, introspect = serving
    assert introspect().status_code == 200
    engine = engine_of(app)
    with engine.connect() as other:
        pids = other.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'psc' AND pid <> "
            "pg_backend_pid() AND backend_type = 'client backend'")).scalars().all()
        assert pids
        for pid in pids:  # every pooled connection, idle between requests
            other.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    for _ in range(len(pids) + 1):
        assert introspect().status_code == 200
