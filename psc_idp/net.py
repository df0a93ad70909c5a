"""Who is on the other end of a request: the reverse proxy psc-idp trusts, and the client's
address.

A request comes from the trusted proxy (nginx in the production layout, config/nginx) when
its source address is in ``trusted_proxies`` (networks, or ``"unix"``: gunicorn's Unix
socket, whose requests have no address) and, if ``proxy_secret`` is set, it carries
that secret in the ``X-Psc-Idp-Proxy`` header, which nginx adds to every request it
forwards and never lets a client set. Only such a request may speak for the client through
the card-certificate header, ``X-Forwarded-For`` and ``X-Request-Id``. The secret makes the
headers unforgeable by anything that can reach psc-idp's port or socket without going
through nginx; production mode refuses to trust a proxy by address alone.

The client's address: behind the trusted proxy it is the last hop the proxy added to
``X-Forwarded-For``; otherwise the peer address. ``address_prefix`` groups addresses the way
rate limits and aggregated audit records key them (IPv4 /24, IPv6 /64): one machine rarely
owns a single address."""

from __future__ import annotations

import functools
import hmac
import ipaddress

from flask import has_request_context, request

from .settings import current as settings

PROXY_SECRET_HEADER = "X-Psc-Idp-Proxy"
_ENVIRON_KEY = "psc_idp.from_proxy"


def from_proxy(environ: dict, settings: dict) -> bool:
    """True when the request came through the trusted reverse proxy (remembered in the
    request's environ: it is asked several times per request)."""
    if _ENVIRON_KEY not in environ:
        environ[_ENVIRON_KEY] = _from_proxy(environ, settings)
    return environ[_ENVIRON_KEY]


def _from_proxy(environ: dict, settings: dict) -> bool:
    if not is_trusted_proxy(environ.get("REMOTE_ADDR", ""), settings.trusted_proxies):
        return False
    secret = settings.proxy_secret
    if not secret:
        return True
    given = environ.get("HTTP_" + PROXY_SECRET_HEADER.upper().replace("-", "_"), "")
    return hmac.compare_digest(given.encode("latin-1", "replace"), secret.encode())


UNIX_SOCKET = "unix"


def is_trusted_proxy(address: str, trusted_proxies) -> bool:
    if not address:  # a Unix socket: gunicorn gives no address
        return UNIX_SOCKET in trusted_proxies
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(trusted_proxies)))


@functools.lru_cache(maxsize=16)
def _networks(trusted_proxies: tuple[str, ...]) -> tuple:
    """Parsed once per configuration: the check runs on every request and audit record."""
    return tuple(ipaddress.ip_network(net, strict=False) for net in trusted_proxies
                 if net != UNIX_SOCKET)


def client_address() -> str | None:
    if not has_request_context():
        return None
    peer = request.environ.get("REMOTE_ADDR", "")
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and from_proxy(request.environ, settings()):
        return forwarded.split(",")[-1].strip()[:64] or peer
    return peer


def address_prefix(address: str | None) -> str:
    """The network an address belongs to for limits and aggregation: IPv4 /24, IPv6 /64
    (an unparsable address is its own group)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
