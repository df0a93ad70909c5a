"""Benchmarks of psc-idp against oidc-provider (the Node reference OpenID provider), with the
same token formats: RS256 ID token, RS256 JWT access token, rotating refresh tokens.

    .venv/bin/python bench/run.py token|refresh|introspection|userinfo [--duration 20]
                                  [--connections 8] [--no-peer]

Each run starts what it measures on this machine: a private PostgreSQL and psc-idp under
gunicorn (1 worker, pinned to CPU 0 with taskset), then oidc-provider (in-memory store,
pinned to CPU 0), and drives each with wrk pinned to CPU 1. Codes for the code exchange are
minted before the run through each provider's own internals (psc-idp: rows written with its
models; oidc-provider: its AuthorizationCode model), never through a benchmark route.
Prints req/s (per vCPU: the server has one), p50/p99 latency and errors (must be 0)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.plugins.postgres import PostgresServer  # noqa: E402

LUA = REPO / "bench" / "lua"
PEER = REPO / "bench" / "peer"
REDIRECT = "https://rp.example/cb"
SCRIPTS = {"token": "code_exchange.lua", "refresh": "refresh.lua",
           "introspection": "introspect.lua", "userinfo": "userinfo.lua"}


def free_port() -> int:
    import socket

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
    argv = ["taskset", "-c", "1", "wrk", "-t", str(connections), "-c", str(connections),
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
    def __init__(self, tmp: Path, postgres: PostgresServer):
        from psc_idp.keys.ring import generate_keys

        self.tmp, self.port = tmp, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = self.base + "/auth/realms/esante-wallet"
        postgres.execute("CREATE DATABASE bench")
        generate_keys(tmp / "keys", "bench-passphrase")
        self.settings = {
            "issuer": self.issuer, "database_url": postgres.url("bench"),
            "secret_key": secrets.token_urlsafe(40), "keys_dir": str(tmp / "keys"),
            "keys_passphrase": "bench-passphrase", "cookie_secure": False,
            "db_pool_size": 8,
        }
        config = tmp / "psc-idp.toml"
        config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in self.settings.items()))
        self.env = {**os.environ, "PSC_IDP_CONFIG": str(config)}

    def prepare(self) -> None:
        from psc_idp import create_app
        from psc_idp.clients import create_client
        from psc_idp.directory.importer import import_files
        from psc_idp.migrate import upgrade

        self.app = create_app(self.settings)
        with self.app.app_context():
            upgrade()
            import_files([REPO / "psc_idp" / "sandbox" / "demo_directory.txt"])
            client, secret = create_client(name="bench", redirect_uris=[REDIRECT],
                                           require_pkce=False)
            self.auth = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()

    def mint_codes(self, count: int) -> list[str]:
        from psc_idp.extensions import db
        from psc_idp.oidc.models import AuthorizationCode, LoginSession, digest, now

        codes = [secrets.token_urlsafe(36) for _ in range(count)]
        client_id = base64.b64decode(self.auth).decode().split(":")[0]
        with self.app.app_context():
            sid = secrets.token_urlsafe(24)
            db.session.add(LoginSession(sid=sid, id_nat="899700245667", auth_time=now(),
                                        acr="eidas1", amr=["sc", "pin", "mfa"],
                                        auth_mode="CARD", expires_at=now() + 86400))
            rows = [dict(code_hash=digest(c), grant_id=secrets.token_urlsafe(24),
                         client_id=client_id, redirect_uri=REDIRECT, scope="openid scope_all",
                         id_nat="899700245667", sid=sid, auth_time=now(), acr="eidas1",
                         amr=["sc", "pin", "mfa"], auth_mode="CARD",
                         expires_at=now() + 3600) for c in codes]
            db.session.execute(db.insert(AuthorizationCode), rows)
            db.session.commit()
        return codes

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", str(REPO / ".venv" / "bin" / "gunicorn"),
             "-b", f"127.0.0.1:{self.port}", "-w", "1", "-k", "gthread",
             "--threads", os.environ.get("BENCH_THREADS", "4"),
             "--no-control-socket", "--log-level", "warning", "psc_idp.wsgi:app"],
            cwd=REPO, env=self.env, stdout=subprocess.DEVNULL, stderr=open(
                self.tmp / "gunicorn.log", "wb"))  # noqa: SIM115
        wait_http(self.base + "/healthz")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)

    token_url = property(lambda self: self.issuer + "/protocol/openid-connect/token")
    introspection_url = property(
        lambda self: self.issuer + "/protocol/openid-connect/token/introspect")
    userinfo_url = property(lambda self: self.issuer + "/protocol/openid-connect/userinfo")


# --- oidc-provider -----------------------------------------------------------------------------

class Peer:
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


# --- workloads ----------------------------------------------------------------------------------

def measure(provider, workload: str, duration: int, connections: int, codes_needed: int,
            tmp: Path) -> dict:
    env = {"AUTH": provider.auth, "REDIRECT_URI": urllib.parse.quote(REDIRECT, safe="")}
    if workload == "token":
        path = tmp / f"codes-{provider.port}.txt"
        path.write_text("\n".join(provider.mint_codes(codes_needed)) + "\n")
        env["CODES"] = str(path)
        return wrk(provider.token_url, SCRIPTS[workload], env, duration, connections)
    warm = provider.mint_codes(connections + 1)
    tokens = [post(provider.token_url, {"grant_type": "authorization_code", "code": c,
                                        "redirect_uri": REDIRECT}, provider.auth)
              for c in warm]
    if workload == "refresh":
        path = tmp / f"refresh-{provider.port}.txt"
        path.write_text("\n".join(t["refresh_token"] for t in tokens[:connections]) + "\n")
        env["TOKENS"] = str(path)
        return wrk(provider.token_url, SCRIPTS[workload], env, duration, connections)
    env["TOKEN"] = tokens[-1]["access_token"]
    url = provider.introspection_url if workload == "introspection" else provider.userinfo_url
    return wrk(url, SCRIPTS[workload], env, duration, connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(SCRIPTS))
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk", "taskset", "node"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is required (scripts/setup installs wrk and node)")
    codes_needed = 2000 * args.duration
    tmp = Path(tempfile.mkdtemp(prefix="psc-idp-bench-"))
    postgres = PostgresServer()
    postgres.start()
    results = {}
    try:
        idp = PscIdp(tmp, postgres)
        idp.prepare()
        idp.start()
        try:
            results["psc-idp (PostgreSQL)"] = measure(idp, args.workload, args.duration,
                                                      args.connections, codes_needed, tmp)
        finally:
            idp.stop()
        if not args.no_peer:
            # oidc-provider cannot introspect JWT access tokens nor take resource-bound ones at
            # userinfo: those two workloads use its opaque access tokens
            formats = "jwt" if args.workload in ("token", "refresh") else "opaque"
            peer = Peer(tmp, codes_needed if args.workload == "token" else args.connections + 1,
                        formats)
            peer.start()
            try:
                results[f"oidc-provider ({formats} AT)"] = measure(
                    peer, args.workload, args.duration, args.connections, codes_needed, tmp)
            finally:
                peer.stop()
    finally:
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nworkload: {args.workload}, {args.duration} s, {args.connections} connections, "
          "server on 1 vCPU (taskset -c 0), wrk on CPU 1")
    print(f"{'provider':<24} {'req/s/vCPU':>10} {'p50':>9} {'p99':>9} {'errors':>7}")
    for name, r in results.items():
        print(f"{name:<24} {r['req/s']:>10.0f} {r['p50']:>9} {r['p99']:>9} {r['errors']:>7}")
    if len(results) == 2:
        ours, peer_r = results.values()
        print(f"ratio psc-idp / oidc-provider: {ours['req/s'] / peer_r['req/s']:.2f}")


if __name__ == "__main__":
    main()
