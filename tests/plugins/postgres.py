"""A private PostgreSQL server for the test session, started from the Debian binaries
in a temporary directory (as the ``postgres`` user when running as root) and stopped at
the end. Each test gets its own database, cloned from a migrated template."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ..ports import free_port


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server binaries not found: run scripts/setup (apt postgresql)")
    return Path(found[-1]).parent


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="psc-idp-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.data = self.dir / "data"

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.resume()

    def resume(self) -> None:
        """Start the server process (again, after ``pause``)."""
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "log"), "-w", "start")

    def pause(self) -> None:
        """Stop the server process, keeping the data (an outage)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                  "stop", check=False)

    def stop(self) -> None:
        self.pause()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        self._run(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql)

    def _run(self, *cmd: str, check: bool = True) -> None:
        subprocess.run(_as_owner(list(cmd)), check=check, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    server.start()
    yield server
    server.stop()
