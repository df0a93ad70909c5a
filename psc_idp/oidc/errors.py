"""Helpers for OAuth error responses (RFC 6749 §4.1.2.1, §5.2)."""

from __future__ import annotations


def printable(value: object, limit: int = 200) -> str:
    """``value`` reduced to the characters an OAuth ``error_description`` may hold
    (%x20-21 / %x23-5B / %x5D-7E): client input quoted in a description must never make
    the error itself fail."""
    return "".join(c for c in str(value)[:limit] if 0x20 <= ord(c) <= 0x7E and c not in '"\\')
