"""Time and digests shared by every area: epoch seconds, the SHA-256 under which random
secrets (codes, tokens, hand-offs) are stored, and values only this deployment can make (a
MAC under its secret key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from flask import current_app


def now() -> int:
    return int(time.time())


def digest(secret: str) -> str:
    """A 256-bit random value needs no slow hash: a leak of the table reveals nothing."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def keyed_digest(message: bytes) -> str:
    """HMAC-SHA256 of ``message`` under the app's secret key, base64url: a capability or an
    identifier the server can recompute and nobody else can make (prefix ``message`` with
    its purpose)."""
    mac = hmac.new(current_app.config["SECRET_KEY"].encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
