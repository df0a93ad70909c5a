"""Operability: ``/healthz`` (the process answers), ``/readyz`` (database, signing keys,
CRL freshness), Prometheus ``/metrics``, a request id on every request (taken from a
trusted proxy's ``X-Request-Id`` or made here, returned in the response, put in logs and
audit records) and JSON logs. Anyone may ask ``/healthz`` and whether the process is ready;
the readiness details and the metrics are for the operations listener (``ops_listen``) or
for callers presenting the ``metrics_token`` bearer token (Prometheus scraping gunicorn)."""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import time

from flask import Blueprint, Flask, Response, abort, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from . import origins
from .extensions import db, idp
from .net import from_proxy
from .oidc.consts import CIBA_GRANT_TYPE, GRANT_TYPES, TOKEN_EXCHANGE_GRANT_TYPE
from .settings import SettingsError
from .settings import current as settings

bp = Blueprint("ops", __name__)

REQUESTS = Counter("psc_idp_http_requests_total", "HTTP requests",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("psc_idp_http_request_seconds", "HTTP request latency", ["endpoint"],
                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
LOGINS = Counter("psc_idp_logins_total", "logins by method and outcome",
                 ["method", "outcome"])
#: the closed label set of ``psc_idp_logins_total``: every outcome of each login method;
#: any other value is counted as ``other`` (a label never comes from the request)
LOGIN_OUTCOMES = {
    "card": ("success",
             "no_certificate",        # no card presented (or not through the trusted proxy)
             "malformed", "expired", "not_yet_valid", "untrusted", "wrong_usage", "revoked",
             "revocation_unknown",    # the CRL is stale (crl_stale_policy fail_closed)
             "no_id_nat",             # a certificate without idNat
             "unknown_professional",  # idNat absent from the directory
             "other"),
    "ecps": ("success",
             "denied",                # "not me" on the phone
             "wrong_code",            # the phone picked another code
             "expired",               # not answered in time
             "cancelled",             # cancelled on the login page, or replaced by the same
                                      # browser network's next request
             "rate_limited",          # too many requests from the network
             "locked",                # the network's requests for the idNat stopped (failures)
             "unknown_id_nat",        # no active practitioner with this idNat
             "no_device",             # the practitioner has no active e-CPS device
             "other"),
}
TOKENS = Counter("psc_idp_tokens_issued_total", "token responses by grant type",
                 ["grant_type"])
BACKCHANNEL = Counter("psc_idp_backchannel_logout_total",
                      "back-channel logout attempts by outcome", ["outcome"])
#: the closed label set of ``psc_idp_backchannel_logout_total``
BACKCHANNEL_OUTCOMES = ("delivered", "retry", "failed")
CIBA = Counter("psc_idp_ciba_total", "CIBA requests and their outcomes", ["outcome"])
#: the closed label set of ``psc_idp_ciba_total``: requests (``requested``; a decoy is
#: ``not_available``: unknown idNat, no phone, throttled), refusals for too many requests,
#: the professional's answers, and the ping notifications
CIBA_OUTCOMES = ("requested", "not_available", "rate_limited", "approved", "denied",
                 "ping_delivered", "ping_retry", "ping_failed")
CRL_AGE = Gauge("psc_idp_crl_age_seconds", "seconds since thisUpdate of each CRL",
                ["source"], multiprocess_mode="max")
DB_POOL = Gauge("psc_idp_db_pool_checked_out", "database connections in use",
                multiprocess_mode="livesum")
AUDIT_UNCHAINED = Gauge("psc_idp_audit_unchained_records",
                        "audit records committed, not yet linked into the hash chain",
                        multiprocess_mode="mostrecent")
AUDIT_UNCHAINED_AGE = Gauge("psc_idp_audit_unchained_age_seconds",
                            "seconds the oldest unchained audit record has waited (0: none)",
                            multiprocess_mode="mostrecent")
AUDIT_CHECKPOINT_AGE = Gauge("psc_idp_audit_checkpoint_age_seconds",
                             "seconds since the newest signed checkpoint of the audit chain "
                             "(0: none yet)", multiprocess_mode="mostrecent")


def login(method: str, outcome: str, amount: int = 1) -> None:
    """Count login outcomes (``LOGIN_OUTCOMES``); an unknown method is not counted."""
    outcomes = LOGIN_OUTCOMES.get(method)
    if outcomes is None:
        logging.getLogger(__name__).warning("login outcome of unknown method %r", method)
        return
    if amount > 0:
        LOGINS.labels(method, outcome if outcome in outcomes else "other").inc(amount)


for _method, _outcomes in LOGIN_OUTCOMES.items():  # every series exists from the start
    for _outcome in _outcomes:
        LOGINS.labels(_method, _outcome)
for _grant_type in (*GRANT_TYPES, CIBA_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE, "other"):
    TOKENS.labels(_grant_type)
for _outcome in CIBA_OUTCOMES:
    CIBA.labels(_outcome)


for _outcome in BACKCHANNEL_OUTCOMES:
    BACKCHANNEL.labels(_outcome)


def backchannel_logout(outcome: str) -> None:
    if outcome in BACKCHANNEL_OUTCOMES:
        BACKCHANNEL.labels(outcome).inc()


def token_issued(grant_type: str) -> None:
    known = grant_type in (*GRANT_TYPES, CIBA_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE)
    TOKENS.labels(grant_type if known else "other").inc()


def ciba(outcome: str) -> None:
    if outcome in CIBA_OUTCOMES:
        CIBA.labels(outcome).inc()


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


def readiness() -> dict:
    state = idp()
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver error means not ready
        db.session.rollback()
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    health = getattr(state.keys, "health", None)
    if callable(health):
        checks["keys"] = health()
    else:
        checks["keys"] = {"ok": bool(state.keys.algorithms)}
    now, grace = time.time(), state.settings.crl_grace
    crls = state.cards.crls.snapshot() if state.cards else []
    stale = [c.source for c in crls if c.stale(now, grace)]
    missing = state.cards is not None and bool(state.settings.card_crls) and not crls
    checks["crl"] = {"ok": not stale and not missing, "stale": stale, "loaded": len(crls)}
    if state.orgs is not None and state.settings.org_crls:  # tls_client_auth (RFC 8705)
        crls = state.orgs.crls.snapshot()
        stale = [c.source for c in crls if c.stale(now, grace)]
        checks["org_crl"] = {"ok": bool(crls) and not stale, "stale": stale,
                             "loaded": len(crls)}
    return checks


def operator() -> bool:
    """The operations listener, or the ``metrics_token`` bearer token."""
    if request.environ.get(origins.ENVIRON_KEY) == origins.OPS:
        return True
    token = settings().metrics_token
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@bp.get("/readyz")
def readyz():
    checks = readiness()
    ready = all(c.get("ok") for c in checks.values())
    body = {"ready": ready, "checks": checks} if operator() else {"ready": ready}
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
def metrics():
    state = idp()
    if not operator():
        if not state.settings.metrics_token:
            abort(404)  # served on ops_listen only
        abort(Response("bearer token required\n", 401, {"WWW-Authenticate": "Bearer"}))
    for store in (state.cards, state.orgs):  # the cards' and the organisations' CRLs
        for crl in store.crls.snapshot() if store else []:
            CRL_AGE.labels(crl.source).set(time.time() - crl.this_update)
    pool = db.engine.pool
    DB_POOL.set(pool.checkedout() if hasattr(pool, "checkedout") else 0)
    audit_gauges(time.time())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def audit_gauges(current: float) -> None:
    """The audit chain's lag, read at scrape time (the sequencer's partial index)."""
    from .audit import AuditCheckpoint, AuditEvent

    try:
        count, oldest = db.session.execute(select(func.count(), func.min(AuditEvent.at))
                                           .where(AuditEvent.hash.is_(None))).one()
        newest = db.session.scalar(select(func.max(AuditCheckpoint.at)))
    except SQLAlchemyError:  # database unavailable: /readyz says so, the gauges keep
        return
    finally:
        db.session.rollback()  # read only: end the transaction
    AUDIT_UNCHAINED.set(count)
    AUDIT_UNCHAINED_AGE.set(current - oldest if oldest else 0)
    if newest:
        AUDIT_CHECKPOINT_AGE.set(current - newest)


def setup(app: Flask) -> None:
    token = app.extensions["psc_idp"].settings.metrics_token
    if token and len(token) < 32:
        raise SettingsError("metrics_token must be at least 32 random characters")
    app.register_blueprint(bp)

    @app.before_request
    def start():
        g.started = time.perf_counter()
        given = request.headers.get("X-Request-Id", "")
        trusted = from_proxy(request.environ, app.extensions["psc_idp"].settings)
        g.request_id = given[:64] if given and trusted and given.isprintable() else \
            secrets.token_hex(8)

    @app.after_request
    def finish(response):
        endpoint = request.endpoint or "unknown"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(time.perf_counter() - g.get("started", 0))
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    if app.extensions["psc_idp"].settings.log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger("psc_idp")
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        root.propagate = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id when there is a request."""

    def format(self, record: logging.LogRecord) -> str:
        from flask import has_request_context

        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if has_request_context():
            entry.update(request_id=g.get("request_id"), method=request.method,
                         path=request.path)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
