"""The client's address: behind a trusted reverse proxy it is the last hop the proxy added
to ``X-Forwarded-For``; otherwise the peer address. ``REMOTE_ADDR`` itself is left alone:
the card-certificate header check needs the proxy's own address."""

from __future__ import annotations

from flask import current_app, has_request_context, request

from .cards.source import is_trusted_proxy


def client_address() -> str | None:
    if not has_request_context():
        return None
    peer = request.environ.get("REMOTE_ADDR", "")
    trusted = current_app.extensions["psc_idp"].settings["trusted_proxies"]
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and is_trusted_proxy(peer, trusted):
        return forwarded.split(",")[-1].strip()[:64] or peer
    return peer
