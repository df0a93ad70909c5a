"""Redirect URIs as registered, stored and matched. A URI is normalised once, when it is
registered (RFC 3986 §6.2.2-6.2.3: scheme and host in lower case, the default port and an
empty port left out, an empty path made ``/``) and refused when it could match something
other than what it says (control characters, whitespace, a wildcard, a backslash, a
fragment even empty, userinfo even empty, dot segments, a port outside 1-65535). The
authorization and logout endpoints then compare the request's URI with the stored,
normalised one, character for character (RFC 9700 §4.1.3, psc.md: exact matching)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}
DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_LENGTH = 2000

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f-\x9f*\\]|\s")
_NETLOC = re.compile(r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:@\[\]]+)(?::(?P<port>[0-9]*))?")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\]")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class InvalidUri(ValueError):
    """Why a URI is refused (the message quotes no more than the start of it)."""


def normalise(uri) -> str:
    """The stored form of ``uri``, or ``InvalidUri``."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_LENGTH:
        raise InvalidUri(f"must be a URL of at most {MAX_LENGTH} characters")
    shown = repr(uri[:100])
    if _FORBIDDEN.search(uri):
        raise InvalidUri(f"{shown} holds a control character, whitespace, a wildcard (*) or "
                         "a backslash")
    if not uri.isascii():
        raise InvalidUri(f"{shown} must be ASCII: percent-encode the path, punycode the host")
    if "#" in uri:
        raise InvalidUri(f"{shown} must not have a fragment (not even an empty '#')")
    try:
        parts = urlsplit(uri)
    except ValueError:  # a bracketed host that is not an IP address
        raise InvalidUri(f"{shown} has no valid host name") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc or not uri.lower().startswith(
            f"{scheme}://"):
        raise InvalidUri(f"{shown} is not an absolute http(s) URL")
    if "@" in parts.netloc:
        raise InvalidUri(f"{shown} must not carry userinfo (not even an empty '@')")
    host, port = _host_port(parts.netloc, shown)
    if scheme == "http" and host not in LOOPBACK:
        raise InvalidUri(f"{shown} must use https (http only for loopback)")
    path = parts.path or "/"
    if any(segment in (".", "..") for segment in path.split("/")):
        raise InvalidUri(f"{shown} must not hold '.' or '..' path segments")
    if _BAD_PERCENT.search(path + parts.query):
        raise InvalidUri(f"{shown} holds a '%' that is not a percent-encoding")
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def _host_port(netloc: str, shown: str) -> tuple[str, int | None]:
    found = _NETLOC.fullmatch(netloc)
    host = found.group("host").lower() if found else ""
    if not found or not _HOST.fullmatch(host) or host.startswith("[") and not _ipv6(host):
        raise InvalidUri(f"{shown} has no valid host name")
    port = found.group("port")
    if not port:
        return host, None
    if len(port) > 5 or not 1 <= int(port) <= 65535:
        raise InvalidUri(f"{shown}: the port must be from 1 to 65535")
    return host, int(port)


def _ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return True
