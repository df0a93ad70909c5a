"""TLS contexts of the embedded listeners (``psc-idp run``). The card origin asks for a
client certificate and lets OpenSSL check its chain during the handshake; psc-idp then
validates it fully (usage, revocation, directory) in ``cards.verify``. In production nginx
terminates TLS with ``ssl_verify_client optional_no_ca`` and forwards the certificate."""

from __future__ import annotations

import ssl
from collections.abc import Iterable


def server_ssl_context(cert: str, key: str, *, client_ca_paths: Iterable[str] = (),
                       require_client_cert: bool = False) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``client_ca_paths`` it requests a client
    certificate chaining to those CAs (optional, so a missing card gets a page, not a
    handshake failure, unless ``require_client_cert``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    paths = list(client_ca_paths)
    if paths:
        for path in paths:
            context.load_verify_locations(cafile=path)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context
