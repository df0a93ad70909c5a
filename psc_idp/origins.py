"""Which routes each origin serves. The embedded listeners (``serve``) mark every request
with the origin that received it: the IdP origin serves the protocol, the login pages, e-CPS
and administration; the card origin only ``/card/…`` and static files; the authorization
endpoint's own origin (``wallet_listen``, PSC's "wallet" host, psc.md §1) only that endpoint;
the mTLS origin (``mtls_listen``, RFC 8705 §5) only the endpoints of ``mtls_endpoint_aliases``
(token, introspection, revocation, userinfo, CIBA, PAR); the operations listener (``ops_listen``)
only ``/healthz``, ``/readyz`` and ``/metrics``.
Anything else on an origin is a 404. Behind nginx, requests arrive unmarked and nginx routes
each origin (config/nginx/psc-idp.conf: only ``/card/`` on the card origin).

Werkzeug's routing redirects (a missing trailing slash, doubled slashes) are turned off: they
build an absolute URL from the client's ``Host`` header, which anyone can forge."""

from __future__ import annotations

from flask import Flask, abort, request

from .settings import Settings

ENVIRON_KEY = "psc_idp.origin"
IDP, CARD, WALLET, MTLS, OPS = "idp", "card", "wallet", "mtls", "ops"
#: the endpoints served on the mTLS origin (``oidc.discovery`` advertises their aliases)
MTLS_ENDPOINTS = {"oidc.token", "oidc.introspect", "oidc.revoke", "oidc.userinfo",
                  "oidc.backchannel_authentication", "oidc.pushed_authorization_request"}

# origin → (blueprints, endpoints) it serves; the IdP origin serves everything else
ONLY = {
    CARD: ({"card"}, {"static", "pages.brand_css", "pages.brand_logo"}),
    WALLET: (set(), {"wallet_authorize", "oidc.authorize"}),
    MTLS: (set(), MTLS_ENDPOINTS),
    OPS: ({"ops"}, set()),
}


def serves(origin: str, endpoint: str, *, wallet_listener: bool) -> bool:
    blueprint = endpoint.rpartition(".")[0]
    if origin in ONLY:
        blueprints, endpoints = ONLY[origin]
        return blueprint in blueprints or endpoint in endpoints
    return blueprint != "card" and not (wallet_listener and endpoint == "wallet_authorize")


def setup(app: Flask, settings: Settings) -> None:
    """Call before the routes are registered (a rule reads ``strict_slashes`` when added)."""
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False
    app.url_map.redirect_defaults = False
    wallet_listener = bool(settings.wallet_listen)

    def only_this_origins_routes():
        origin = request.environ.get(ENVIRON_KEY)
        if origin is None or origin == IDP and request.endpoint is None:
            return  # behind a proxy, or the IdP origin's own 404 / 405
        if request.endpoint is None or not serves(origin, request.endpoint,
                                                  wallet_listener=wallet_listener):
            abort(404)

    # first of all hooks: nothing (CSRF check, input guards) runs for a route not served here
    app.before_request_funcs.setdefault(None, []).insert(0, only_this_origins_routes)
