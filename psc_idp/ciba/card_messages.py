"""What a CPS card signs in the CIBA card channel (psc.md §7), shared by the server
(``ciba.card``) and the desktop tool (``psc-card``): RSASSA-PKCS1-v1_5 with SHA-256 over
these UTF-8 strings, sent base64url without padding. Each kind of message has its own
prefix: a signature for one never stands for the other."""

from __future__ import annotations

#: to list the pending requests, over a fresh server nonce
LIST_PREFIX = "psc-idp-ciba-list:"


def list_message(nonce: str) -> str:
    return LIST_PREFIX + nonce


def decision_message(request_id: str, challenge: str, decision: str) -> str:
    """To approve or deny (``decision``) the request, over its server challenge."""
    return f"psc-idp-ciba:{request_id}:{challenge}:{decision}"
