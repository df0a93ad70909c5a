"""What the benchmarks start and drive: psc-idp under gunicorn (and its e-CPS channel) on a
private PostgreSQL, oidc-provider (``bench/peer``), and wrk.

CPUs: the server gets CPU 0 with one gunicorn worker (as in every earlier figure), every CPU
with more; wrk and the other load generators run on the last CPU, so with several workers
they share a CPU with the server (what the 2-worker target counts). PostgreSQL is never
pinned."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LUA = REPO / "bench" / "lua"
PEER = REPO / "bench" / "peer"
REDIRECT = "https://rp.example/cb"
SCRIPTS = {"token": "code_exchange.lua", "refresh": "refresh.lua",
           "introspection": "introspect.lua", "userinfo": "userinfo.lua"}
CPUS = os.cpu_count() or 1
LOAD_CPU = str(CPUS - 1)  # wrk and the phones


def server_cpus(workers: int) -> str:
    """The CPUs the server processes may use (``taskset -c``)."""
    return "0" if workers == 1 or CPUS == 1 else f"0-{CPUS - 1}"


def vcpus(workers: int) -> int:
    return 1 if workers == 1 else CPUS


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far (/proc/PID/stat; taskset
    execs the command, so a Popen's pid is the server's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def post(url: str, data: dict, auth: str) -> dict:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), headers={
        "Authorization": f"Basic {auth}",
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wrk(url: str, script: str, env: dict, duration: int, connections: int) -> dict:
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t", str(connections), "-c", str(connections),
            "-d", f"{duration}s", "--latency", "--timeout", "10s", "-s", str(LUA / script),
            url]
    done = subprocess.run(argv, env={**os.environ, **env, "THREADS": str(connections)},
                          capture_output=True, text=True, timeout=duration + 60, check=True)
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0)
    return {"req/s": rate, "requests": total, "errors": errors,
            "p50": _latency(out, "50%"), "p99": _latency(out, "99%")}


def _latency(out: str, pct: str) -> str:
    found = re.search(rf"^\s+{pct}\s+([\d.]+\w+)", out, re.M)
    return found.group(1) if found else "?"


# --- psc-idp ---------------------------------------------------------------------------------

class PscIdp:
    """psc-idp's database (``prepare`` once), then gunicorn with N workers (``start``) and,
    for the phones, the e-CPS channel (``start_channel``)."""

    def __init__(self, tmp: Path, postgres):
        from psc_idp.keys.ring import generate_keys

        self.tmp, self.port = tmp, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = self.base + "/auth/realms/esante-wallet"
        self.channel_port = free_port()
        self.channel_url = f"http://127.0.0.1:{self.channel_port}/auth/realms/esante-wallet"
        postgres.execute("CREATE DATABASE bench")
        self.database_url = postgres.url("bench")
        generate_keys(tmp / "keys", "bench-passphrase")
        self.settings = {
            "issuer": self.issuer, "database_url": self.database_url,
            "secret_key": secrets.token_urlsafe(40), "keys_dir": str(tmp / "keys"),
            "keys_passphrase": "bench-passphrase", "cookie_secure": False,
            "db_pool_size": 8, "ecps_channel_listen": f"127.0.0.1:{self.channel_port}",
        }
        config = tmp / "psc-idp.toml"
        config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in self.settings.items()))
        self.env = {**os.environ, "PSC_IDP_CONFIG": str(config)}
        self.processes: list[subprocess.Popen] = []

    def prepare(self, extracts: list[Path] = ()) -> None:
        from psc_idp import create_app
        from psc_idp.clients import create_client
        from psc_idp.directory.importer import import_files
        from psc_idp.migrate import upgrade

        self.app = create_app(self.settings)
        with self.app.app_context():
            upgrade()
            import_files([REPO / "psc_idp" / "sandbox" / "demo_directory.txt", *extracts])
            client, secret = create_client(name="bench", redirect_uris=[REDIRECT],
                                           require_pkce=False)
            self.client_id = client.client_id
            self.auth = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()

    def mint_codes(self, count: int) -> list[str]:
        from psc_idp.extensions import db
        from psc_idp.oidc.models import AuthorizationCode, LoginSession, digest, now

        codes = [secrets.token_urlsafe(36) for _ in range(count)]
        with self.app.app_context():
            sid = secrets.token_urlsafe(24)
            db.session.add(LoginSession(sid=sid, id_nat="899700245667", auth_time=now(),
                                        acr="eidas1", amr=["sc", "pin", "mfa"],
                                        auth_mode="CARD", expires_at=now() + 86400))
            rows = [dict(code_hash=digest(c), grant_id=secrets.token_urlsafe(24),
                         client_id=self.client_id, redirect_uri=REDIRECT,
                         scope="openid scope_all", id_nat="899700245667", sid=sid,
                         auth_time=now(), acr="eidas1", amr=["sc", "pin", "mfa"],
                         auth_mode="CARD", expires_at=now() + 3600) for c in codes]
            db.session.execute(db.insert(AuthorizationCode), rows)
            db.session.commit()
        return codes

    def start(self, workers: int = 1) -> None:
        self.workers = workers
        self._spawn([str(REPO / ".venv" / "bin" / "gunicorn"), "-b", f"127.0.0.1:{self.port}",
                     "-w", str(workers), "-k", "gthread",
                     "--threads", os.environ.get("BENCH_THREADS", "4"), "--no-control-socket",
                     "--log-level", "warning", "psc_idp.wsgi:app"], "gunicorn")
        wait_http(self.base + "/healthz")

    def start_channel(self) -> None:
        self.channel = self._spawn([str(REPO / ".venv" / "bin" / "psc-idp"), "ecps",
                                    "channel"], "channel")
        wait_http(self.channel_url + "/ecps/api/pending")

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115
        self.processes.append(subprocess.Popen(
            ["taskset", "-c", server_cpus(self.workers), *argv], cwd=REPO, env=self.env,
            stdout=subprocess.DEVNULL, stderr=log))
        return self.processes[-1]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=30)
        self.processes = []

    def audit_chain(self) -> str:
        """After the runs: chain what the workers left unchained, then verify the whole trail
        (speed must lose nothing: every token issued is in the chain, and it holds)."""
        from psc_idp import audit
        from psc_idp.audit_sequencer import run_once

        with self.app.app_context():
            while run_once().chained:
                pass
            found = audit.verify()
        if not found.ok:
            return f"BROKEN: {found.problem}"
        return f"intact, {found.checked} records, {found.checkpoints} checkpoints matched"

    token_url = property(lambda self: self.issuer + "/protocol/openid-connect/token")
    introspection_url = property(
        lambda self: self.issuer + "/protocol/openid-connect/token/introspect")
    userinfo_url = property(lambda self: self.issuer + "/protocol/openid-connect/userinfo")


# --- oidc-provider -----------------------------------------------------------------------------

class Peer:
    """oidc-provider 9.13, one Node process on CPU 0, in-memory store."""

    auth = base64.b64encode(b"bench:bench-secret-0123456789").decode()

    def __init__(self, tmp: Path, mint: int, access_tokens: str):
        self.tmp, self.port, self.mint, self.access_tokens = tmp, free_port(), mint, access_tokens
        self.base = f"http://127.0.0.1:{self.port}"
        self.codes_file = tmp / "peer-codes.txt"

    def start(self) -> None:
        if not (PEER / "node_modules").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True,
                           capture_output=True)
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", "node", "server.mjs", str(self.port), str(self.mint),
             str(self.codes_file), self.access_tokens], cwd=PEER, stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / "peer.log", "wb"))  # noqa: SIM115
        wait_http(self.base + "/.well-known/openid-configuration", timeout=600)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)

    def mint_codes(self, count: int) -> list[str]:
        return self.codes_file.read_text().split()[:count]

    token_url = property(lambda self: self.base + "/token")
    introspection_url = property(lambda self: self.base + "/token/introspection")
    userinfo_url = property(lambda self: self.base + "/me")
