"""Where the card's certificate comes from: the embedded TLS listener (``SSL_CLIENT_CERT``
set by the WSGI server) or a TLS-terminating reverse proxy's header — the header is honoured
only on requests from the trusted proxy (``net.from_proxy``): anyone else could forge it."""

from __future__ import annotations

from urllib.parse import unquote


class UntrustedCertificateSource(Exception):
    """A client-certificate header arrived from an address that is not a trusted proxy."""


def client_certificate(environ: dict, *, from_proxy: bool, header: str) -> str | None:
    """The PEM certificate the client presented, or None when it presented none;
    ``from_proxy``: the request came through the trusted reverse proxy."""
    forwarded = environ.get("HTTP_" + header.upper().replace("-", "_"))
    if forwarded is not None:
        if not from_proxy:
            raise UntrustedCertificateSource(f"address {environ.get('REMOTE_ADDR', '')}")
        # nginx's $ssl_client_escaped_cert is the URL-encoded PEM; empty when no card.
        pem = unquote(forwarded).strip()
        return pem or None
    return environ.get("SSL_CLIENT_CERT") or None
