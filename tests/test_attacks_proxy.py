"""The proxy trust model, attacked: behind nginx, psc-idp takes the card certificate,
X-Forwarded-For and X-Request-Id only from nginx — a request that reaches gunicorn's socket
or the app's port without nginx, or with a wrong secret, forges nothing; production mode
refuses to trust a proxy by its address alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from psc_idp.settings import SettingsError, load

from .plugins.idp import REPO, base_settings
from .plugins.nginx import PROXY_SECRET
from .support import Browser, query
from .test_production import VENV, production  # noqa: F401 - the production fixture

SECRET_HEADER = "X-Psc-Idp-Proxy"


def forged_headers(card, secret: str | None = None) -> dict:
    headers = {"X-SSL-Client-Cert": quote(Path(card.certificate).read_text()),
               "X-Forwarded-For": "203.0.113.7", "X-Request-Id": "forged-request-id"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return headers


def test_gunicorn_socket_without_nginx_forges_no_card(production, card_curl, demo_card):  # noqa: F811
    """The public certificate of a professional's card, sent straight to a gunicorn
    socket (no nginx, no secret or a wrong one): no login, and nothing forged reaches the
    audit trail."""
    rp = production.rp()
    browser = Browser(production.ca, card_curl)
    card_url = browser.start(rp.authorization_url())
    path = card_url.split("localhost:", 1)[1].split("/", 1)[1]
    for secret in (None, "wrong", PROXY_SECRET[:-1]):
        status, body = production.direct(production.app_ports[0], "/" + path,
                                         forged_headers(demo_card, secret))
        assert status == 403 and "no_certificate" in body
    events = [json.loads(line) for line in
              production.cli("audit", "export", "--since", "1970-01-01").splitlines()]
    refused = [e for e in events if e["event"] == "login"]
    assert refused and all(e["outcome"] == "failure" for e in refused)
    assert all(e.get("address") != "203.0.113.7" for e in events)
    assert all(e.get("request_id") != "forged-request-id" for e in events)
    # through nginx, the same card logs in (nginx's own secret and certificate header)
    status, headers, body = card_curl(demo_card, card_url)
    assert status == 302, body


def test_app_port_without_nginx_forges_no_card(proxied_idp, card_curl, demo_card):
    """The embedded-development proxy layout (nginx in front of a TCP port): the port is
    reachable, but a request without nginx's secret is not nginx."""
    browser = Browser(proxied_idp.ca, card_curl)
    rp = proxied_idp.rp()
    card_url = browser.start(rp.authorization_url())
    app_port = proxied_idp.server.servers[0].server_port
    direct = f"http://127.0.0.1:{app_port}/card/login?" + card_url.split("?", 1)[1]
    response = requests.get(direct, headers=forged_headers(demo_card), timeout=10)
    assert response.status_code == 403 and "no_certificate" in response.text
    status, headers, body = card_curl(demo_card, card_url)
    assert status == 302, body
    assert query(headers["location"])["h"]


def test_production_refuses_a_proxy_trusted_by_address_alone(keys_dir, tmp_path):
    settings = base_settings(keys_dir, f"sqlite:///{tmp_path}/x.sqlite3", mode="production",
                             issuer="https://idp.example/auth/realms/esante-wallet",
                             card_login_url="https://card.idp.example",
                             card_trust_anchors=["/etc/ca.pem"], sms_gateway="http",
                             sms_http_url="https://sms.example/", smtp_host="smtp.example",
                             trusted_proxies=["127.0.0.1/32"])
    with pytest.raises(SettingsError, match="proxy_secret"):
        load(settings, environ={})
    config = tmp_path / "psc-idp.toml"
    config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    started = subprocess.run(
        [str(VENV / "bin" / "gunicorn"), "-c", str(REPO / "config" / "gunicorn.conf.py"),
         "--bind", f"unix:{tmp_path}/g.sock", "psc_idp.wsgi:app"],
        env={"PSC_IDP_CONFIG": str(config), "PATH": "/usr/bin:/bin",
             "GUNICORN_CONTROL_SOCKET": str(tmp_path / "g.ctl")},
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert started.returncode != 0 and "proxy_secret" in started.stdout + started.stderr
    settings.update(proxy_secret="short")
    with pytest.raises(SettingsError, match="proxy_secret"):
        load(settings, environ={})
    settings.update(proxy_secret=PROXY_SECRET, trusted_proxies=["unix", "nowhere"])
    with pytest.raises(SettingsError, match="nowhere"):
        load(settings, environ={})
