"""``keys_dir/keys.json``: the record of every signing key — its backend, where its private
half is (a PEM file next to the index, or an object in the HSM token), its public JWK and
the timestamps of its life (``keys.lifecycle``).

Readers see either the old or the new index (written to a temporary file, then renamed over
it); writers (the ``psc-idp keys`` commands, possibly on several machines sharing the
directory) take an exclusive ``flock`` on ``.keys.lock`` around read-modify-write."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

INDEX = "keys.json"
LOCK = ".keys.lock"


class KeyRingError(Exception):
    """The signing keys are missing, unreadable or misconfigured; the message says what to
    change or run."""


def read(keys_dir: Path) -> list[dict]:
    path = Path(keys_dir) / INDEX
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise KeyRingError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise KeyRingError(f"{path} is not a list of keys")
    return entries


def stamp(keys_dir: Path) -> tuple[int, int, int] | None:
    """Changes whenever the index is replaced or rewritten (inode, mtime, size)."""
    try:
        info = (Path(keys_dir) / INDEX).stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def write(keys_dir: Path, entries: list[dict]) -> None:
    keys_dir = Path(keys_dir)
    tmp = keys_dir / f".{INDEX}.{os.getpid()}"
    tmp.write_text(json.dumps(entries, indent=2) + "\n")
    os.replace(tmp, keys_dir / INDEX)


@contextlib.contextmanager
def editing(keys_dir: Path) -> Iterator[list[dict]]:
    """The entries to change in place; written back when the block ends without error."""
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True)
    with open(keys_dir / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read(keys_dir)
        yield entries
        write(keys_dir, entries)
