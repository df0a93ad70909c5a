"""Apache httpd (the Debian package) with mod_auth_openidc in front of a tiny application
that shows what it receives: the relying party of ANS's own proof of concept for Pro Santé
Connect, run privately (own config, port, logs) against a live psc-idp.

The site configuration is the runnable Apache block of ``docs/integrating.md``, read from the
Markdown as it is; its ``${…}`` values come from httpd's environment (``apache_env``)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .idp import REPO, free_port

INTEGRATING = REPO / "docs" / "integrating.md"
MODULES = Path("/usr/lib/apache2/modules")
#: what the site block needs beyond httpd's compiled-in modules (Debian: ``a2enmod``)
LOAD = ("mpm_event", "authn_core", "authz_core", "authz_user", "proxy", "proxy_http",
        "auth_openidc")
#: a runnable block: ``<!-- runnable: NAME -->`` on the line before its fence
SNIPPET = re.compile(r"^<!-- runnable: (?P<name>\S+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)^```$",
                     re.MULTILINE | re.DOTALL)


def doc_snippets(path: Path = INTEGRATING) -> dict[str, tuple[str, str]]:
    """The runnable blocks of ``path``: name → (fence language, code as written)."""
    return {m["name"]: (m["lang"], m["code"]) for m in SNIPPET.finditer(path.read_text())}


class Backend:
    """The application behind the proxy: answers every request with the path and the
    request headers it received, as JSON."""

    def __init__(self):
        class Echo(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server hook)
                body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Echo)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Apache:
    """A private httpd: config, PID file and logs in its own directory. As root, httpd's
    children run as www-data, so that directory is readable by all (the config holds no
    secret: it reads them from the environment), except the logs."""

    def __init__(self, site: str):
        self.port, self.process, self.output = free_port(), None, None
        self.url = f"http://localhost:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="psc-idp-apache-"))
        self.root.chmod(0o755)
        (self.root / "logs").mkdir(mode=0o700)  # written by the parent, before setuid
        (self.root / "site.conf").write_text(site)
        loads = "".join(f"LoadModule {name}_module {MODULES}/mod_{name}.so\n" for name in LOAD)
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        (self.root / "httpd.conf").write_text(
            f"ServerRoot {self.root}\n{loads}{user}"
            f"Listen 127.0.0.1:{self.port}\nServerName localhost:{self.port}\n"
            f"PidFile {self.root}/httpd.pid\nDefaultRuntimeDir {self.root}\n"
            "StartServers 1\nThreadsPerChild 8\nMaxRequestWorkers 16\nMinSpareThreads 8\n"
            "MaxSpareThreads 16\n"
            f"ErrorLog {self.root}/logs/error.log\nLogLevel warn auth_openidc:debug\n"
            'LogFormat "%h %u \\"%r\\" %>s" short\n'
            f"CustomLog {self.root}/logs/access.log short\n"
            f"Include {self.root}/site.conf\n")

    def trust(self, ca: str) -> str:
        """A copy of ``ca`` that httpd's children can read."""
        path = self.root / "ca.pem"
        shutil.copy(ca, path)
        path.chmod(0o644)
        return str(path)

    def start(self, env: dict[str, str]) -> None:
        binary = shutil.which("apache2", path="/usr/sbin:" + os.environ.get("PATH", ""))
        self.process = subprocess.Popen(
            [binary or "/usr/sbin/apache2", "-f", str(self.root / "httpd.conf"),
             "-D", "FOREGROUND"],
            env={"PATH": os.environ.get("PATH", ""), "LANG": "C", **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("Apache did not start:\n" + self.log()) from None
                time.sleep(0.05)

    def logged(self, line: str, timeout: float = 5) -> bool:
        """Whether ``line`` shows up in the access log (written just after the response)."""
        path, deadline = self.root / "logs" / "access.log", time.monotonic() + timeout
        while line not in path.read_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def log(self, lines: int = 400) -> str:
        """httpd's own output and the tail of its error and access logs."""
        parts = [self.output or ""]
        for name in ("error.log", "access.log"):
            path = self.root / "logs" / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(p for p in parts if p)

    def stop(self) -> None:
        if self.output is None:
            self.process.terminate()
            self.output = self.process.communicate(timeout=15)[0]


@pytest.fixture
def apache_backend():
    backend = Backend()
    yield backend
    backend.stop()


@pytest.fixture
def apache_site(tmp_path):
    """A factory: ``apache_site(block)`` → an unstarted Apache serving ``block``; every
    one is stopped at the end of the test, its logs kept in the test's tmp_path and
    printed (pytest shows them when the test failed)."""
    servers: list[Apache] = []

    def make(site: str) -> Apache:
        servers.append(Apache(site))
        return servers[-1]

    yield make
    for server in servers:
        if server.process is not None:
            server.stop()
        print(f"Apache on port {server.port}:\n{server.log()}")
        shutil.copytree(server.root / "logs", tmp_path / f"apache-{server.port}")
        shutil.rmtree(server.root, ignore_errors=True)


def apache_env(apache: Apache, idp, client_id: str, secret: str, backend: Backend,
               authorization_endpoint: str, ca: str | None = None) -> dict[str, str]:
    """The values the documented site block reads from the environment (``ca``: the CAs
    to trust for the IdP, by default the sandbox's)."""
    return {
        "PSC_ISSUER": idp.issuer, "PSC_CA_BUNDLE": apache.trust(ca or idp.ca),
        "PSC_AUTHORIZATION_ENDPOINT": authorization_endpoint,
        "PSC_CLIENT_ID": client_id, "PSC_CLIENT_SECRET": secret,
        "APP_URL": apache.url, "APP_BACKEND": backend.url,
        "OIDC_PASSPHRASE": secrets.token_urlsafe(32),
    }


__all__ = ["apache_backend", "apache_site"]
