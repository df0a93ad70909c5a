"""The production shape, started by the test: the shipped nginx site in front of two
gunicorn process groups (config/gunicorn.conf.py) on Unix sockets, sharing one PostgreSQL,
psc-idp in production mode trusting nginx by its secret. A card login goes through nginx
with the SoftHSM card and its steps land on both processes; one process killed mid-flow
does not break the login; a PostgreSQL outage gives clean 503s, loses nothing, and service
resumes by itself."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from .plugins.idp import REPO, _migrate, base_settings, free_port
from .plugins.nginx import PROXY_SECRET, Nginx, render_site
from .plugins.postgres import PostgresServer
from .support import Browser, RelyingParty, code_from

VENV = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv"))
METRICS_TOKEN = "metrics-token-for-prometheus-0123456789"


class Production:
    def __init__(self, tmp: Path, keys_dir, cards, database_url: str, processes: int = 2,
                 prefix: tuple[str, ...] = ()):
        """``processes`` gunicorn process groups; ``prefix`` wraps the server commands
        (the benchmarks pin them with taskset)."""
        self.tmp, self.cards, self.prefix = tmp, cards, list(prefix)
        self.idp_port, self.card_port = free_port(), free_port()
        self.app_ports = [free_port() for _ in range(processes)]
        self.issuer = f"https://localhost:{self.idp_port}/auth/realms/esante-wallet"
        self.ca = str(cards.pki.tls_ca)
        pki = cards.pki
        settings = base_settings(
            keys_dir, database_url, mode="production", issuer=self.issuer,
            card_login_url=f"https://localhost:{self.card_port}",
            card_trust_anchors=[str(pki.trust_anchor)],
            card_intermediates=[str(pki.issuing_ca)], card_crls=[str(pki.crl)],
            trusted_proxies=["unix"], proxy_secret=PROXY_SECRET, sms_gateway="http",
            sms_http_url="http://127.0.0.1:9/sms", log_format="json",
            metrics_token=METRICS_TOKEN)
        self.config = tmp / "psc-idp.toml"
        self.config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
        self.env = {**os.environ, "PSC_IDP_CONFIG": str(self.config)}
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        for port in self.app_ports:
            metrics = self.tmp / f"metrics-{port}"
            metrics.mkdir()
            log = open(self.tmp / f"gunicorn-{port}.log", "wb")  # noqa: SIM115
            self.processes.append(subprocess.Popen(
                [*self.prefix, str(VENV / "bin" / "gunicorn"), "-c",
                 str(REPO / "config" / "gunicorn.conf.py"), "psc_idp.wsgi:app"],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                env={**self.env, "GUNICORN_BIND": f"unix:{self.socket(port)}",
                     "GUNICORN_WORKERS": "1",
                     "GUNICORN_THREADS": "4", "PROMETHEUS_MULTIPROC_DIR": str(metrics),
                     "GUNICORN_CONTROL_SOCKET": str(self.tmp / f"gunicorn-{port}.ctl")}))
            log.close()
        for port in self.app_ports:
            self._wait(port)
        self.nginx = Nginx(self.tmp / "nginx", render_site(
            self.cards.pki, [f"unix:{self.socket(port)}" for port in self.app_ports],
            self.idp_port, self.card_port))
        self.nginx.start([self.idp_port, self.card_port], prefix=self.prefix)

    def socket(self, instance: int) -> Path:
        """The Unix socket of one gunicorn process group (``app_ports`` name them)."""
        return self.tmp / f"gunicorn-{instance}.sock"

    def direct(self, instance: int, path: str, headers: dict | None = None):
        """A request straight to a gunicorn socket, around nginx: (status, body)."""
        return unix_get(self.socket(instance), path, headers)

    def _wait(self, instance: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.direct(instance, "/healthz")[0] == 200:
                    return
            except OSError:  # not listening yet, or still booting
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn {instance} did not come up: " + self.logs())

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.tmp.glob("gunicorn-*.log"))

    def served_by(self, port: int) -> int:
        """How many requests the process on ``port`` logged."""
        return (self.tmp / f"gunicorn-{port}.log").read_text(errors="replace").count('HTTP/1.')

    def stop(self) -> None:
        self.nginx.stop()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)

    def cli(self, *args: str) -> str:
        done = subprocess.run([str(VENV / "bin" / "psc-idp"), *args], env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def rp(self) -> RelyingParty:
        created = json.loads(self.cli("clients", "create", "--name", "prod rp",
                                      "--redirect-uri", "https://rp.example/cb", "--json"))
        return RelyingParty(self.issuer, created["client_id"], created["client_secret"],
                            "https://rp.example/cb", self.ca)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path):
        super().__init__("localhost", timeout=10)
        self.path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def unix_get(path: Path, url: str, headers: dict | None = None) -> tuple[int, str]:
    connection = _UnixConnection(path)
    try:
        connection.request("GET", url, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


@pytest.fixture
def production(tmp_path, keys_dir, cards, postgres_server, postgres_template):
    name = f"prod_{free_port()}"
    postgres_server.execute(f"CREATE DATABASE {name} TEMPLATE {postgres_template}")
    prod = Production(tmp_path, keys_dir, cards, postgres_server.url(name))
    prod.start()
    yield prod
    prod.stop()


def test_card_login_through_nginx_on_two_processes(production, card_curl, demo_card):
    rp = production.rp()
    browser = Browser(production.ca, card_curl)
    response = browser.with_card(demo_card, rp.authorization_url())
    tokens = rp.exchange(code_from(response)["code"]).json()
    assert rp.verify_id_token(tokens["id_token"])["preferred_username"] == demo_card.id_nat
    assert rp.userinfo(tokens["access_token"]).status_code == 200
    assert rp.refresh(tokens["refresh_token"]).status_code == 200
    # no sticky sessions: both processes served steps of this flow
    assert all(production.served_by(port) > 0 for port in production.app_ports)
    ready = requests.get(production.issuer.split("/auth/")[0] + "/readyz",
                         verify=production.ca, timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.headers["X-Request-Id"]
    status, metrics = production.direct(production.app_ports[0], "/metrics",
                                        {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert 'psc_idp_logins_total{method="card",outcome="success"}' in metrics


def test_a_process_killed_mid_flow(production, card_curl, demo_card):
    rp = production.rp()
    browser = Browser(production.ca, card_curl)
    card_url = browser.start(rp.authorization_url())
    production.processes[0].send_signal(signal.SIGKILL)
    production.processes[0].wait(timeout=10)
    status, headers, body = card_curl(demo_card, card_url)
    assert status == 302, body
    code = code_from(browser.get(headers["location"]))["code"]
    assert rp.exchange(code).status_code == 200


@pytest.fixture
def fragile_production(tmp_path, keys_dir, cards):
    """Production on a PostgreSQL server of its own, which the test stops and restarts."""
    server = PostgresServer()
    server.start()
    server.execute("CREATE DATABASE psc")
    _migrate(base_settings(keys_dir, server.url("psc")))
    prod = Production(tmp_path, keys_dir, cards, server.url("psc"))
    prod.start()
    yield prod, server
    prod.stop()
    server.stop()


def test_database_outage(fragile_production, card_curl, demo_card):
    prod, server = fragile_production
    rp = prod.rp()
    browser = Browser(prod.ca, card_curl)
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]

    server.pause()
    try:
        during = rp.exchange(code)
        assert during.status_code == 503
        assert during.json()["error"] == "temporarily_unavailable"
        page = browser.get(rp.authorization_url())
        assert page.status_code == 503 and "temporarily_unavailable" in page.text
        assert requests.get(prod.issuer.split("/auth/")[0] + "/readyz", verify=prod.ca,
                            timeout=10).status_code == 503
    finally:
        server.resume()

    # service resumes by itself, and the code was not consumed by the failed attempt
    after = rp.exchange(code)
    assert after.status_code == 200, after.text
    events = [json.loads(line) for line in
              prod.cli("audit", "export", "--since", "1970-01-01").splitlines()]
    # every completed login has its audit record, and the chain is intact: the workers'
    # sequencers chained everything after the outage
    assert [e["event"] for e in events].count("login") == 1
    deadline = time.monotonic() + 20
    while "0 record(s) not chained yet" not in (verified := prod.cli("audit", "verify")):
        assert time.monotonic() < deadline, verified
        time.sleep(0.5)
    assert verified.startswith("audit chain intact")
