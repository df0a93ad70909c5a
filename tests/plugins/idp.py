"""Fixtures for a real psc-idp: signing keys, a migrated database (SQLite and
PostgreSQL), the app, registered clients and a live server on real TLS listeners."""

from __future__ import annotations

import itertools
import shutil
import socket
import threading
from pathlib import Path

import pytest

from psc_idp import create_app
from psc_idp.keys.ring import generate_keys
from psc_idp.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
_counter = itertools.count()


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys")
    generate_keys(path, "test-passphrase")
    return path


def base_settings(keys_dir: Path, database_url: str, **extra) -> dict:
    return {
        "secret_key": SECRET, "keys_dir": str(keys_dir), "keys_passphrase": "test-passphrase",
        "database_url": database_url, **extra,
    }


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, keys_dir) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    _migrate(base_settings(keys_dir, f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server, keys_dir) -> str:
    postgres_server.execute("CREATE DATABASE psc_template")
    _migrate(base_settings(keys_dir, postgres_server.url("psc_template")))
    return "psc_template"


def _migrate(settings: dict) -> None:
    app = create_app(settings)
    with app.app_context():
        upgrade()
        from psc_idp.extensions import db

        db.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, migrated database of each kind for one test."""
    if request.param == "sqlite":
        path = tmp_path / "idp.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    name = f"psc_test_{next(_counter)}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    return server.url(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """psc-idp on its two embedded TLS listeners, in threads of the test process."""

    def __init__(self, app, servers):
        self.app, self.servers = app, servers
        self.settings = app.extensions["psc_idp"].settings
        self.issuer = self.settings["issuer"]
        self.card_url = self.settings["card_login_url"]

    def start(self):
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True)
                        for s in self.servers]
        for thread in self.threads:
            thread.start()

    def stop(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()
