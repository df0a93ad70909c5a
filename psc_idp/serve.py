"""The embedded listeners of ``psc-idp run``: the IdP origin over TLS, the card origin over
TLS asking for a client certificate from the configured card CAs, and, when configured, the
authorization endpoint's separate origin (``wallet_listen``). In
production nginx terminates TLS instead (config/nginx) and gunicorn serves the app."""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import make_server

from .tls import server_ssl_context


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def listeners(app: Flask) -> list:
    settings = app.extensions["psc_idp"].settings
    plain = server_ssl_context(settings["tls_cert"], settings["tls_key"])
    card = server_ssl_context(settings["tls_cert"], settings["tls_key"],
                              client_ca_paths=settings["card_trust_anchors"]
                              + settings["card_intermediates"])
    app.extensions["psc_idp"].cards.crls.start()  # load the CRLs before the first login
    servers = [
        make_server(*_address(settings["listen"]), app, threaded=True, ssl_context=plain),
        make_server(*_address(settings["card_listen"]), app, threaded=True, ssl_context=card),
    ]
    if settings["wallet_listen"]:  # the authorization endpoint's own origin (psc.md §1)
        servers.append(make_server(*_address(settings["wallet_listen"]), app, threaded=True,
                                   ssl_context=plain))
    return servers


def serve_forever(app: Flask) -> None:
    servers = listeners(app)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        for server in servers:
            server.shutdown()
