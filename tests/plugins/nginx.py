"""nginx (the Debian package) in front of psc-idp, with the shipped site configuration
``config/nginx/psc-idp.conf`` adapted to test ports and the sandbox PKI: the production
path of the card login (nginx terminates TLS and forwards the client certificate)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from psc_idp import create_app

from .idp import REPO, Idp, LiveServer, free_port, live_settings

SITE = REPO / "config" / "nginx" / "psc-idp.conf"
#: the secret nginx adds to every forwarded request (psc-idp's ``proxy_secret``)
PROXY_SECRET = "test-proxy-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


def render_site(pki, upstreams: list[int | str], idp_port: int, card_port: int,
                mtls_port: int = 0) -> str:
    """The shipped site with test ports; ``upstreams``: TCP ports on 127.0.0.1, or
    ``unix:/path`` sockets as in production."""
    text = SITE.read_text()
    servers = "\n    ".join(
        f"server {u if isinstance(u, str) else f'127.0.0.1:{u}'} max_fails=1 fail_timeout=5s;"
        for u in upstreams)
    replacements = {
        "server unix:/run/psc-idp-8000/http.sock max_fails=1 fail_timeout=5s;\n"
        "    server unix:/run/psc-idp-8001/http.sock max_fails=1 fail_timeout=5s;": servers,
        '"PROXY_SECRET"': f'"{PROXY_SECRET}"',
        "/var/log/nginx/psc-idp.access.log": "logs/psc-idp.access.log",
        "listen 443 ssl;\n    server_name idp.example.org;":
            f"listen 127.0.0.1:{idp_port} ssl;\n    server_name localhost;",
        "listen 443 ssl;\n    server_name card.idp.example.org;":
            f"listen 127.0.0.1:{card_port} ssl;\n    server_name localhost;",
        "/etc/psc-idp/tls/server.pem": str(pki.server_cert),
        "/etc/psc-idp/tls/server.key": str(pki.server_key),
        "/etc/psc-idp/cards/trust-anchors.pem": str(pki.directory / "cards-chain.pem"),
        "listen 443 ssl;\n    server_name mtls.idp.example.org;":
            f"listen 127.0.0.1:{mtls_port or free_port()} ssl;\n    server_name localhost;",
        "/etc/psc-idp/orgs/trust-anchors.pem": str(pki.trust_anchor),
    }
    for old, new in replacements.items():
        assert old in text, f"{SITE} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def access_log(nginx) -> str:
    path = nginx.prefix / "logs" / "psc-idp.access.log"
    return path.read_text() if path.exists() else ""


class Nginx:
    def __init__(self, prefix: Path, site: str):
        self.prefix = prefix
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        (prefix / "site.conf").write_text(site)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/logs/error.log warn;\nevents {{}}\n"
            f"http {{\n  access_log {prefix}/logs/access.log;\n"
            f"  client_body_temp_path {prefix}/body;\n  proxy_temp_path {prefix}/proxy;\n"
            f"  include {prefix}/site.conf;\n}}\n")

    def start(self, ports, prefix=()) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [*prefix, binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        import socket

        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("nginx did not start: " + self.log()) from None
                    time.sleep(0.05)

    def log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def behind_nginx(keys_dir, database_url, cards, tmp_path, http_extra: str = "", **extra):
    """psc-idp on plain HTTP behind the shipped nginx site, trusting nginx as in production
    (its address and ``proxy_secret``); ``http_extra``: nginx directives added to its
    ``http`` block; ``extra``: psc-idp settings."""
    idp_port, card_port, app_port, mtls_port = free_port(), free_port(), free_port(), free_port()
    settings = live_settings(keys_dir, database_url, cards, trusted_proxies=["127.0.0.1/32"],
                             proxy_secret=PROXY_SECRET, **extra)
    if settings.get("mtls_url"):  # the mTLS origin: nginx's server block on mtls_port
        settings["mtls_url"] = f"https://localhost:{mtls_port}"
    settings.update(issuer=f"https://localhost:{idp_port}/auth/realms/esante-wallet",
                    card_login_url=f"https://localhost:{card_port}")
    app = create_app(settings)
    server = LiveServer(app, [make_server("127.0.0.1", app_port, app, threaded=True)])
    server.start()
    nginx = Nginx(tmp_path / "nginx", render_site(cards.pki, [app_port], idp_port, card_port,
                                                  mtls_port))
    if http_extra:
        conf = nginx.prefix / "nginx.conf"
        conf.write_text(conf.read_text().replace("http {\n", "http {\n" + http_extra))
    try:
        nginx.start([idp_port, card_port, mtls_port])
        yield Idp(server, cards.pki.tls_ca)
    finally:
        nginx.stop()
        server.stop()
        with app.app_context():
            from psc_idp.extensions import db

            db.engine.dispose()


@pytest.fixture
def proxied_idp(keys_dir, database_url, cards, tmp_path):
    """psc-idp on plain HTTP behind nginx, trusting nginx's certificate header."""
    with behind_nginx(keys_dir, database_url, cards, tmp_path) as live:
        yield live


__all__ = ["PROXY_SECRET", "proxied_idp"]
