"""Where the card's certificate comes from: the embedded TLS listener (``SSL_CLIENT_CERT``
set by the WSGI server) or a TLS-terminating reverse proxy's header — the header is honoured
only from the configured proxy addresses, anyone else could forge it."""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import unquote


class UntrustedCertificateSource(Exception):
    """A client-certificate header arrived from an address that is not a trusted proxy."""


def client_certificate(environ: dict, *, trusted_proxies, header: str) -> str | None:
    """The PEM certificate the client presented, or None when it presented none."""
    forwarded = environ.get("HTTP_" + header.upper().replace("-", "_"))
    remote = environ.get("REMOTE_ADDR", "")
    if forwarded is not None:
        if not is_trusted_proxy(remote, trusted_proxies):
            raise UntrustedCertificateSource(f"address {remote}")
        # nginx's $ssl_client_escaped_cert is the URL-encoded PEM; empty when no card.
        pem = unquote(forwarded).strip()
        return pem or None
    return environ.get("SSL_CLIENT_CERT") or None


def is_trusted_proxy(address: str, trusted_proxies) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(trusted_proxies)))


@functools.lru_cache(maxsize=16)
def _networks(trusted_proxies: tuple[str, ...]) -> tuple:
    """Parsed once per configuration: the check runs on every request and audit record."""
    return tuple(ipaddress.ip_network(net, strict=False) for net in trusted_proxies)
