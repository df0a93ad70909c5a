"""The application factory: ``create_app()`` reads as the list of set-up steps; per-app
state lives in ``app.extensions["psc_idp"]``."""

from __future__ import annotations

import logging
import os
import select
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, request
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from werkzeug.exceptions import HTTPException

from . import errors, i18n, origins, pages, sqlite_file
from . import settings as settings_module
from .extensions import db
from .keys.ring import KeyRing, load_key_ring
from .keys.signer import KeyUnavailable

log = logging.getLogger("psc_idp")
csrf = CSRFProtect()


@dataclass
class Idp:
    settings: settings_module.Settings
    keys: KeyRing
    cards: Any = None
    #: the verifier of organisation certificates (tls_client_auth); None when not configured
    orgs: Any = None
    server: Any = None
    protector: Any = None
    #: the protocol's interactions, as login methods reach them (``oidc.interaction``)
    interactions: Any = None
    clients: Any = None


def create_app(overrides: dict[str, Any] | None = None, environ=None) -> Flask:
    """``environ``: where ``PSC_IDP_*`` settings are read (default: the process
    environment)."""
    settings = settings_module.load(overrides, os.environ if environ is None else environ)
    app = Flask(__name__)
    setup_config(app, settings)
    setup_database(app, settings)
    idp = Idp(settings=settings, keys=load_key_ring(Path(settings.keys_dir), settings))
    app.extensions["psc_idp"] = idp
    setup_cards(app, idp)
    setup_clients(app, idp)
    setup_protocol(app, idp)
    i18n.setup(app, cookie_secure=settings.cookie_secure)
    pages.setup(app)
    setup_errors(app)
    setup_input_guard(app)
    setup_security_headers(app)
    from . import ops

    ops.setup(app)
    return app


def setup_config(app: Flask, settings: settings_module.Settings) -> None:
    app.json.sort_keys = False  # keep PSC's claim order (psc.md §3): integrators diff it
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # __Host-: only ever set by this exact origin, over HTTPS, for the whole path
        SESSION_COOKIE_NAME=session_cookie_name(settings),
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime),
        MAX_CONTENT_LENGTH=64 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=3600,  # static assets (CSS, scripts)
        WTF_CSRF_SSL_STRICT=False,
    )


def session_cookie_name(settings: settings_module.Settings) -> str:
    return "__Host-psc_idp" if settings.cookie_secure else "psc_idp_session"


def setup_database(app: Flask, settings: settings_module.Settings) -> None:
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.database_url
    sqlite_file.protect(settings.database_url)  # 0600 before SQLite creates it
    postgresql = settings.database_url.startswith("postgresql")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(
        pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size, pool_timeout=5,
        connect_args={"connect_timeout": 5}) if postgresql else {}
    db.init_app(app)
    if postgresql:
        with app.app_context():
            event.listen(db.engine, "checkout", _refuse_closed_by_server)


def _refuse_closed_by_server(dbapi_connection, record, proxy) -> None:
    """No ping per request: a pooled connection the server has spoken on while it was
    idle is replaced (SQLAlchemy's pool retries with a new one). A restarting or
    failing-over PostgreSQL, or one that terminates the backend, sends its last message
    and closes the socket: readable, with no query pending. A connection that dies
    silently fails its first statement instead; SQLAlchemy then invalidates the whole
    pool, that request gets a 503 (``setup_errors``) and the next one reconnects."""
    try:
        poller = select.poll()
        poller.register(dbapi_connection.pgconn.socket, select.POLLIN)
        spoke = bool(poller.poll(0))
    except Exception as exc:  # a closed connection has no socket
        raise DisconnectionError("connection closed") from exc
    if spoke:
        raise DisconnectionError("the server closed this connection while it was idle")


def setup_cards(app: Flask, idp: Idp) -> None:
    from .cards.setup import build_org_verifier, build_verifier

    idp.cards = build_verifier(idp.settings)
    idp.orgs = build_org_verifier(idp.settings)


def setup_clients(app: Flask, idp: Idp) -> None:
    from .clients.cache import ClientCache

    idp.clients = ClientCache()


def setup_protocol(app: Flask, idp: Idp) -> None:
    from .admin.api import api as admin_api
    from .admin.console import bp as console_bp
    from .admin.registration import bp as registration_bp
    from .ciba.card import api as ciba_card_api
    from .ecps import browser_phone
    from .ecps.views import api as ecps_api
    from .ecps.views import bp as ecps_bp
    from .login.views import bp as login_bp
    from .login.views import card_bp
    from .oidc import interaction
    from .oidc.endpoints import protector
    from .oidc.interaction_views import bp as interaction_bp
    from .oidc.server import build_server
    from .oidc.views import bp as oidc_bp

    origins.setup(app, idp.settings)  # before any route: which origin serves which routes
    idp.server = build_server(app)
    idp.protector = protector()
    idp.interactions = interaction
    prefix = urlsplit(idp.settings.issuer).path.rstrip("/")
    csrf.init_app(app)
    csrf.exempt(oidc_bp)
    csrf.exempt(ecps_api)
    csrf.exempt(ciba_card_api)
    app.register_blueprint(oidc_bp, url_prefix=prefix)
    _register_wallet_endpoint(app, idp.settings)
    app.register_blueprint(login_bp, url_prefix=prefix)
    app.register_blueprint(interaction_bp, url_prefix=prefix)
    app.register_blueprint(ecps_bp, url_prefix=prefix)
    app.register_blueprint(ecps_api, url_prefix=prefix)
    app.register_blueprint(ciba_card_api, url_prefix=prefix)
    browser_phone.register(app, idp.settings, prefix)  # the sandbox's phone page
    app.register_blueprint(card_bp)
    app.register_blueprint(admin_api)
    app.register_blueprint(console_bp)
    app.register_blueprint(registration_bp, url_prefix=prefix)
    csrf.exempt(admin_api)
    csrf.exempt(registration_bp)


def _register_wallet_endpoint(app: Flask, settings: settings_module.Settings) -> None:
    """The configured ``authorization_endpoint`` (PSC's split "wallet" host) when it is not
    the standard path under the issuer."""
    from .oidc.consts import PATHS
    from .oidc.views import wallet_authorize

    url = settings.authorization_endpoint
    if url and url != settings.issuer + PATHS["authorization_endpoint"]:
        app.add_url_rule(urlsplit(url).path, "wallet_authorize", wallet_authorize,
                         methods=["GET", "POST"])
        csrf.exempt(wallet_authorize)


def setup_errors(app: Flask) -> None:
    """One handler per kind of failure, each rendered by ``errors.render``: psc-idp's own
    errors, HTTP errors (404, 405, 413…), the signing keys or the database being down (503,
    nothing written), anything unexpected (500, logged with its trace, never shown)."""

    @app.errorhandler(errors.PscError)
    def psc_error(error: errors.PscError):
        db.session.rollback()
        return errors.render(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.name.lower().replace(" ", "_")
        status = error.code or 500
        return errors.render(errors.PscError(
            error.description or error.name, status=status,
            error="invalid_request" if status < 500 else "server_error",
            reason=code if code in errors.REASONS else None))

    @app.errorhandler(KeyUnavailable)
    def keys_down(error: KeyUnavailable):
        """The HSM (or a key in it) cannot sign now: 503, nothing issued, retry later."""
        db.session.rollback()
        log.error("signing key unavailable on %s %s: %s", request.method, request.path, error)
        return _unavailable("the signing service is unavailable, retry later")

    @app.errorhandler(DBAPIError)
    def database_down(error: DBAPIError):
        """The database is unreachable (restart, failover): a clean 503, nothing written."""
        db.session.rollback()
        log.error("database unavailable on %s %s: %s", request.method, request.path,
                  type(error.orig).__name__ if error.orig else type(error).__name__)
        return _unavailable("the database is unavailable, retry later")

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return errors.render(errors.PscError("internal error"))


def _unavailable(description: str) -> Response:
    """RFC 6749's ``temporarily_unavailable`` as a 503 (a page for people)."""
    return errors.render(errors.PscError(description, error="temporarily_unavailable",
                                         status=503, headers={"Retry-After": "5"}))


def setup_input_guard(app: Flask) -> None:
    @app.before_request
    def refuse_nul_characters():
        """No request parameter may hold a NUL character: PostgreSQL refuses it in text,
        which would turn a client's mistake into a database error (a 503 for everyone's
        retry logic). One check at the edge, for every endpoint."""
        for values in (request.args, request.form):
            for key, value in values.items(multi=True):
                if "\x00" in key or "\x00" in value:
                    abort(400, "a request parameter holds a NUL character")


#: pages: scripts and styles from psc-idp only, never inline, never framed
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
#: anything else (JSON, JWTs): nothing to load, nothing to frame
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"


def setup_security_headers(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        """What every answer carries: a strict Content Security Policy (no inline script;
        the form_post page sets its own), no framing, no MIME sniffing, no Referer (URLs
        carry transaction ids), HSTS on TLS, and ``no-store`` unless the answer says how
        it may be cached (JWKS, discovery, static assets): pages, tokens and userinfo
        carry secrets or personal data."""
        headers = response.headers
        headers.setdefault("Content-Security-Policy",
                           PAGE_CSP if response.mimetype == "text/html" else OTHER_CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        return response
