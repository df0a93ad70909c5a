"""Each embedded origin serves only its own routes (the card origin no administration, no
metrics; the wallet origin only the authorization endpoint); the readiness details and
the metrics are for the operations listener or the ``metrics_token`` bearer; no redirect
reflects a forged ``Host``; the SQLite database and its journals are 0600 — each tried
against the live listeners."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
import requests

from psc_idp import create_app
from psc_idp.migrate import upgrade

from .plugins.idp import base_settings, free_port, running_idp

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TOKEN = "metrics-token-0123456789-abcdefghijklmnopq"
PREFIX = "/auth/realms/esante-wallet"


def root(url: str) -> str:
    return url.split("/auth/")[0]


def get(idp, url: str, **kwargs) -> requests.Response:
    return requests.get(url, verify=idp.ca, timeout=10, allow_redirects=False, **kwargs)


def test_the_card_origin_serves_only_the_card_login(idp):
    card = idp.card_url
    for path in ["/admin/api/v1/clients", "/admin/api/v1/openapi.json", "/admin/console/",
                 "/metrics", "/readyz", "/healthz", f"{PREFIX}/.well-known/openid-configuration",
                 f"{PREFIX}/protocol/openid-connect/certs", f"{PREFIX}/login?tx=x"]:
        assert get(idp, card + path).status_code == 404, path
    token = requests.post(card + f"{PREFIX}/protocol/openid-connect/token", verify=idp.ca,
                          data={"grant_type": "client_credentials"}, timeout=10)
    assert token.status_code == 404
    assert get(idp, card + "/card/login?tx=unknown").status_code == 400  # served: expired tx
    assert get(idp, card + "/static/idp.css").status_code == 200


def test_the_idp_origin_does_not_serve_the_card_login(idp):
    assert get(idp, root(idp.issuer) + "/card/login?tx=x").status_code == 404
    assert get(idp, idp.issuer + "/.well-known/openid-configuration").status_code == 200
    assert get(idp, root(idp.issuer) + "/admin/api/v1/openapi.json").status_code == 200


def test_readiness_details_and_metrics_are_not_public(idp):
    public = get(idp, root(idp.issuer) + "/readyz")
    assert public.status_code == 200 and public.json() == {"ready": True}
    assert get(idp, root(idp.issuer) + "/metrics").status_code == 404
    assert get(idp, root(idp.issuer) + "/healthz").json() == {"status": "ok"}
    # the operations listener: details and metrics, nothing else
    ready = get(idp, idp.ops_url + "/readyz").json()
    assert ready["ready"] is True and set(ready["checks"]) == {"database", "keys", "crl"}
    metrics = get(idp, idp.ops_url + "/metrics")
    assert metrics.status_code == 200 and "psc_idp_http_requests_total" in metrics.text
    for path in [f"{PREFIX}/.well-known/openid-configuration", "/card/login?tx=x",
                 "/admin/api/v1/clients"]:
        assert get(idp, idp.ops_url + path).status_code == 404, path


def test_the_metrics_token_opens_them_on_the_public_origin(database_url, keys_dir, cards,
                                                            smtp_server, tmp_path):
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     metrics_token=TOKEN, ops_listen="") as idp:
        url = root(idp.issuer)
        refused = get(idp, url + "/metrics")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        wrong = {"Authorization": "Bearer " + TOKEN[:-1] + "x"}
        assert get(idp, url + "/metrics", headers=wrong).status_code == 401
        assert "checks" not in get(idp, url + "/readyz", headers=wrong).json()
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert "psc_idp_logins_total" in get(idp, url + "/metrics", headers=right).text
        assert get(idp, url + "/readyz", headers=right).json()["checks"]["database"]["ok"]
        assert get(idp, idp.card_url + "/metrics", headers=right).status_code == 404


def test_the_wallet_origin_serves_only_the_authorization_endpoint(database_url, keys_dir,
                                                                  cards, smtp_server,
                                                                  tmp_path):
    port = free_port()
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     authorization_endpoint=f"https://localhost:{port}/auth",
                     wallet_listen=f"127.0.0.1:{port}") as idp:
        rp = idp.rp()
        wallet = f"https://localhost:{port}"
        query = rp.authorization_url().split("?", 1)[1]
        assert get(idp, f"{wallet}/auth?{query}").status_code in (302, 307)
        for path in [f"{PREFIX}/.well-known/openid-configuration", "/admin/console/",
                     "/healthz", "/card/login?tx=x", "/metrics"]:
            assert get(idp, wallet + path).status_code == 404, path
        assert get(idp, f"{root(idp.issuer)}/auth?{query}").status_code == 404


@pytest.mark.parametrize("path", ["/admin/console", "//healthz", "/static//idp.css",
                                  f"{PREFIX}//login", f"{PREFIX}/login/", "/admin//console/",
                                  f"{PREFIX}/.well-known/openid-configuration/"])
def test_no_redirect_reflects_a_forged_host(idp, path):
    for origin in (root(idp.issuer), idp.card_url):
        response = get(idp, origin + path, headers={"Host": "evil.example"})
        assert "evil.example" not in response.headers.get("Location", ""), (origin, path)
        assert "evil.example" not in response.text


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_is_private(keys_dir, tmp_path, idp, demo_card, browser):
    # the live server's database (created by the migrations, copied per test)
    live = Path(idp.app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    browser.with_card(demo_card, idp.rp().authorization_url())
    assert mode(live) == 0o600
    # a new one, as `psc-idp db upgrade` creates it, and its journals
    path = tmp_path / "new" / "psc-idp.sqlite3"
    path.parent.mkdir()
    app = create_app(base_settings(keys_dir, f"sqlite:///{path}"))
    with app.app_context():
        upgrade()
        from psc_idp.extensions import db

        db.engine.dispose()
    assert mode(path) == 0o600
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE probe (x)")
    assert mode(path.with_name(path.name + "-journal")) == 0o600
    writer.execute("ROLLBACK")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE probe (x)")
    assert mode(path.with_name(path.name + "-wal")) == 0o600
    assert mode(path.with_name(path.name + "-shm")) == 0o600
    writer.close()
    # an older file readable by others is narrowed at start
    old = tmp_path / "old.sqlite3"
    shutil.copy(path, old)
    old.chmod(0o644)
    create_app(base_settings(keys_dir, f"sqlite:///{old}"))
    assert mode(old) == 0o600
