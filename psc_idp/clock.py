"""Time and digests shared by every area: epoch seconds, and the SHA-256 under which
random secrets (codes, tokens, hand-offs) are stored."""

from __future__ import annotations

import hashlib
import time


def now() -> int:
    return int(time.time())


def digest(secret: str) -> str:
    """A 256-bit random value needs no slow hash: a leak of the table reveals nothing."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
