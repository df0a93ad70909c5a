"""The SQLite database file (the embedded default) holds tokens, sessions and the audit
trail: it is readable by the service account only. The file is created 0600 before SQLite
first opens it, and an older file readable by others is narrowed to 0600; SQLite gives its
``-journal``, ``-wal`` and ``-shm`` files the database file's permissions."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("psc_idp")

SIDE_FILES = ("-journal", "-wal", "-shm")


def database_path(database_url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases, in-memory and URI filenames."""
    url = make_url(database_url)
    name = url.database or ""
    if url.get_backend_name() != "sqlite" or name in ("", ":memory:") or \
            name.startswith("file:"):
        return None
    return Path(name)


def protect(database_url: str) -> None:
    path = database_path(database_url)
    if path is None:
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        for file in [path, *(Path(f"{path}{suffix}") for suffix in SIDE_FILES)]:
            _narrow(file)
    except FileNotFoundError:
        return  # no such directory: SQLite says so on the first connection


def _narrow(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            path.chmod(mode & 0o700)
        except PermissionError:
            log.warning("%s is readable by other accounts (mode %o): make it 0600", path,
                        mode)
            return
        log.warning("%s was readable by other accounts (mode %o): now %o", path, mode,
                    mode & 0o700)
