"""Fixtures for a real psc-idp: signing keys, a migrated database (SQLite and
PostgreSQL), the app, registered clients and a live server on real TLS listeners."""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import RSAKey

from psc_idp import create_app
from psc_idp.keys.ring import generate_keys
from psc_idp.migrate import upgrade
from psc_idp.serve import Listeners, start_reactor

from ..ports import free_port  # noqa: F401 (the tests take it from here)
from ..support import Browser, RelyingParty

REPO = Path(__file__).resolve().parents[2]
DEMO_DIRECTORY = REPO / "psc_idp" / "sandbox" / "demo_directory.txt"
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
        from psc_idp.directory.importer import import_files
        from psc_idp.extensions import db

        import_files([DEMO_DIRECTORY])

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


class LiveServer:
    """psc-idp serving in the test process: its embedded listeners (``serve.Listeners``, on
    the reactor's thread) or werkzeug servers (plain HTTP behind nginx) in threads."""

    def __init__(self, app, servers):
        self.app, self.servers = app, servers
        self.settings = app.extensions["psc_idp"].settings
        self.issuer = self.settings.issuer
        self.card_url = self.settings.card_login_url
        ops = self.settings.ops_listen
        self.ops_url = f"http://{ops}" if ops and isinstance(servers[0], Listeners) else None

    def start(self):
        self.threads = []
        for server in self.servers:
            if isinstance(server, Listeners):
                server.start()
                continue
            # request threads are joined by server_close(): no request outlives the test
            # (its database connection would then outlive the engine)
            server.daemon_threads = False
            self.threads.append(threading.Thread(target=server.serve_forever, daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self):
        for server in self.servers:
            if isinstance(server, Listeners):
                server.stop()  # joins the app threads: no request outlives the test
                continue
            server.shutdown()
            server.server_close()


@dataclass
class ClientKey:
    """A relying party's own key pair for private_key_jwt (RFC 7523)."""

    key: object
    kid: str = "rp-key-1"

    @property
    def jwks(self) -> dict:
        public = RSAKey.import_key(self.key.public_key()).as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def assertion(self, client_id: str, audience: str) -> str:
        issued = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": issued,
                  "exp": issued + 60, "jti": secrets.token_urlsafe(16)}
        return joserfc_jwt.encode({"alg": "RS256", "kid": self.kid}, claims,
                                  RSAKey.import_key(self.key))


@pytest.fixture(scope="session")
def client_key() -> ClientKey:
    return ClientKey(rsa.generate_private_key(public_exponent=65537, key_size=2048))


class Idp:
    """The live server as a test sees it: issuer, CA to trust, and a way to register RPs."""

    def __init__(self, server: LiveServer, ca: Path):
        self.server, self.app, self.ca = server, server.app, str(ca)
        self.issuer, self.card_url = server.issuer, server.card_url
        self.ops_url = server.ops_url  # the operations listener (None behind nginx)
        self.logout_uri = "https://rp.example/logged-out"

    def rp(self, auth_method: str = "client_secret_basic", jwks=None, userinfo_alg=None,
           id_token_alg: str = "RS256", **kwargs) -> RelyingParty:
        from psc_idp.clients import create_client

        with self.app.app_context():
            client, secret = create_client(
                name=f"rp {next(_counter)}", redirect_uris=["https://rp.example/cb"],
                post_logout_redirect_uris=[self.logout_uri], auth_method=auth_method,
                jwks=jwks, userinfo_alg=userinfo_alg, id_token_alg=id_token_alg, **kwargs)
            client_id = client.client_id
        return RelyingParty(self.issuer, client_id, secret, "https://rp.example/cb", self.ca)


def live_settings(keys_dir: Path, database_url: str, cards, **extra) -> dict:
    port, card_port = free_port(), free_port()
    pki = cards.pki
    return base_settings(
        keys_dir, database_url,
        issuer=f"https://localhost:{port}/auth/realms/esante-wallet",
        card_login_url=f"https://localhost:{card_port}",
        listen=f"127.0.0.1:{port}", card_listen=f"127.0.0.1:{card_port}",
        tls_cert=str(pki.server_cert), tls_key=str(pki.server_key),
        card_trust_anchors=[str(pki.trust_anchor)], card_intermediates=[str(pki.issuing_ca)],
        card_crls=[str(pki.crl)], **{"ops_listen": f"127.0.0.1:{free_port()}", **extra})


@contextlib.contextmanager
def running_idp(keys_dir, database_url, cards, smtp_server, tmp_path, **extra):
    """A live psc-idp on its embedded listeners (``extra``: settings)."""
    app = create_app(live_settings(keys_dir, database_url, cards, smtp_host="127.0.0.1",
                                   smtp_port=smtp_server.port,
                                   sms_outbox_dir=str(tmp_path / "sms-outbox"), **extra))
    start_reactor()
    server = LiveServer(app, [Listeners(app)])
    server.start()
    try:
        yield Idp(server, cards.pki.tls_ca)
    finally:
        server.stop()
        with app.app_context():
            from psc_idp.extensions import db

            db.engine.dispose()


@pytest.fixture
def idp(keys_dir, database_url, cards, smtp_server, tmp_path):
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path) as live:
        yield live


@pytest.fixture
def browser(idp, card_curl):
    return Browser(idp.ca, card_curl)


@pytest.fixture
def browser_factory(card_curl):
    return lambda live: Browser(live.ca, card_curl)


@pytest.fixture
def no_server_errors(caplog):
    """Whatever the test does, the server logs no error (no stack trace, no 500)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
