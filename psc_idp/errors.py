"""psc-idp's errors, one shape for all: a wire code, a public description (translated), an
HTTP status and a private detail for the logs; rendered by one handler as JSON for programs
or as a page for people (``render``).

A login that fails for a known reason is a ``Failure`` (a value a login method returns, not
an exception): its reason names an entry of ``REASONS`` — what the professional reads, what
to do next, and which way out the page offers (back to the application with an OAuth error
it can act on, another try, help)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Response, g, jsonify, make_response, render_template, request
from flask_babel import lazy_gettext as _l

log = logging.getLogger("psc_idp")


class PscError(Exception):
    """An error psc-idp answers with: ``error`` is the wire code (RFC 6749 §5.2, RFC 7591
    §3.2.2 or an API's own), ``description`` what the caller may read, ``status`` the HTTP
    status, ``detail`` what only the logs get."""

    error = "server_error"
    status = 500
    #: answered as JSON even to a browser (APIs: admin, registration, the phones')
    for_programs = False

    def __init__(self, description: str = "", *, error: str | None = None,
                 status: int | None = None, detail: str = "",
                 headers: dict[str, str] | None = None, reason: str | None = None):
        super().__init__(description or detail or self.error)
        self.description = description
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status
        self.detail = detail
        self.headers = headers or {}
        #: what a person's page explains (``REASONS``), when it is not the wire code
        self.reason = reason

    def body(self) -> dict:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = str(self.description)
        return body


@dataclass(frozen=True)
class Reason:
    """What a person reads about one failure: ``message`` says what happened, ``advice``
    what to do; ``retry``: trying again (another card, another method) may work;
    ``oauth_error``: what the application hears when the professional goes back to it."""

    message: str
    advice: str = ""
    retry: bool = False
    oauth_error: str = "access_denied"


#: an application's request psc-idp does not support (the wire detail tells its developer)
UNSUPPORTED = Reason(
    _l("The application's request is invalid."),
    _l("Tell the application's support (the technical detail below helps them)."))
TOO_MANY = Reason(_l("Too many attempts."), _l("Wait a few minutes before trying again."),
                  retry=True)

REASONS: dict[str, Reason] = {
    # card (the TLS client certificate)
    "no_certificate": Reason(
        _l("No CPS card was presented."),
        _l("Check that your card is inserted in the reader and that your card software is "
           "running, then try again. If your browser asked for a certificate, choose the one "
           "of your CPS card."), retry=True),
    "malformed": Reason(
        _l("The certificate presented by your card cannot be read."),
        _l("Try again with the card inserted properly. If it happens again, contact support."),
        retry=True),
    "expired": Reason(
        _l("Your CPS card has expired."),
        _l("Ask for its renewal. Meanwhile, you may sign in with the e-CPS app if you have "
           "activated it.")),
    "not_yet_valid": Reason(
        _l("Your CPS card is not valid yet."),
        _l("A new card becomes valid on its start date. Check your computer's date and time, "
           "or sign in with the e-CPS app.")),
    "untrusted": Reason(
        _l("This card was not issued by an authority this service trusts."),
        _l("Use your CPS card (not another smart card or certificate). If it is your CPS card, "
           "contact support.")),
    "wrong_usage": Reason(
        _l("This certificate cannot be used to sign in."),
        _l("Choose your card's authentication certificate when the browser asks, then try "
           "again."), retry=True),
    "revoked": Reason(
        _l("Your CPS card has been revoked."),
        _l("Re-inserting it will not help: a revoked card cannot be used again. Ask for a new "
           "card; meanwhile, sign in with the e-CPS app if you have activated it.")),
    "revocation_unknown": Reason(
        _l("The revocation status of your card cannot be checked right now."),
        _l("This is on our side: try again in a few minutes."), retry=True,
        oauth_error="temporarily_unavailable"),
    "no_id_nat": Reason(
        _l("This certificate carries no national professional identifier."),
        _l("Choose your CPS card's certificate when the browser asks, then try again."),
        retry=True),
    "unknown_professional": Reason(
        _l("This card belongs to no active professional in the directory."),
        _l("If you have just registered or changed your professional situation, the "
           "directory may not be up to date yet. Contact your professional council or "
           "support.")),
    # e-CPS
    "ecps_denied": Reason(
        _l("The sign-in was refused in the e-CPS app."),
        _l("If you did not refuse it yourself, someone may be trying to sign in as you: do not "
           "approve requests you did not start."), retry=True),
    "ecps_wrong_code": Reason(
        _l("You picked another code than the one shown on this page."),
        _l("Start again and, on your phone, pick the code displayed on this page."),
        retry=True),
    "ecps_expired": Reason(
        _l("The request was not approved in time in the e-CPS app."),
        _l("Start again and approve the request on your phone within the time shown."),
        retry=True),
    "ecps_cancelled": Reason(
        _l("You cancelled the e-CPS request."), "", retry=True),
    "rate_limited": TOO_MANY,
    # the login itself
    "login_expired": Reason(
        _l("This sign-in request has expired or is no longer valid."),
        _l("Go back to the application and start again.")),
    "already_authenticated": Reason(
        _l("This sign-in request was already completed."),
        _l("Go back to the application and start again.")),
    "not_admin": Reason(
        _l("This console is reserved for psc-idp administrators."),
        _l("Ask an administrator to add your national identifier to the 'admins' setting.")),
    # protocol and service
    "invalid_request": Reason(
        _l("The application's request is invalid."),
        _l("The application sent a request this service cannot accept. Go back to the "
           "application; if it happens again, tell its support (the technical detail below "
           "helps them).")),
    "invalid_client": Reason(
        _l("This application is not registered with the service, or is disabled."),
        _l("Tell the application's support: it must be registered with this service.")),
    "unauthorized_client": Reason(
        _l("This application may not use this kind of sign-in."),
        _l("Tell the application's support (the technical detail below helps them).")),
    "unsupported_response_type": UNSUPPORTED,
    "invalid_scope": Reason(
        _l("The application asked for information this service does not provide."),
        _l("Tell the application's support (the technical detail below helps them).")),
    "invalid_request_object": UNSUPPORTED,  # RFC 9101 §6.2
    "invalid_request_uri": UNSUPPORTED,
    "invalid_logout_request": Reason(
        _l("The application's sign-out request is invalid."),
        _l("You may still be signed in. Close your browser to end your session, and tell the "
           "application's support (the technical detail below helps them).")),
    "temporarily_unavailable": Reason(
        _l("The service is temporarily unavailable."),
        _l("Try again in a few moments."), retry=True,
        oauth_error="temporarily_unavailable"),
    "not_found": Reason(
        _l("This page does not exist."),
        _l("Check the address, or go back to the application you came from.")),
    "method_not_allowed": Reason(
        _l("This page cannot be opened this way."),
        _l("Go back to the application you came from and start again.")),
    "bad_request": Reason(
        _l("The request is invalid."),
        _l("Go back to the application you came from and start again.")),
    "too_many_requests": TOO_MANY,
    "server_error": Reason(
        _l("Something went wrong on our side."),
        _l("Try again in a few moments. If it happens again, contact support with the "
           "reference below.")),
}

GENERIC = REASONS["bad_request"]


@dataclass(frozen=True)
class Failure:
    """A login that did not succeed: ``reason`` from ``REASONS``, ``detail`` for the logs
    and the audit (never shown)."""

    reason: str
    detail: str = field(default="", compare=False)

    @property
    def explained(self) -> Reason:
        return REASONS.get(self.reason, GENERIC)


def page(reason: str, status: int, *, technical: str = "", back_url: str | None = None,
         retry_url: str | None = None) -> Response:
    """The page a person sees for a failure: what happened, what to do, and the ways out
    (``back_url``: to the application, with an OAuth error it can act on; ``retry_url``:
    another try, shown when the reason says it may work)."""
    explained = REASONS.get(reason, GENERIC)
    html = render_template("failure.html", reason=reason, explained=explained,
                           technical=technical, back_url=back_url,
                           retry_url=retry_url if explained.retry else None,
                           request_id=g.get("request_id", ""))
    return make_response(html, status)


def failure_page(failure: Failure, status: int, interaction=None) -> Response:
    """The page of a failed login, with the ways out its interaction offers (back to the
    application, the login page again)."""
    from .extensions import idp

    ways = {} if interaction is None else idp().interactions.ways_out(interaction,
                                                                       failure.reason)
    return page(failure.reason, status, **ways)


def wants_page() -> bool:
    """A person's browser (an HTML page is what it accepts best, or a plain GET of a page)
    rather than a program."""
    accepted = request.accept_mimetypes
    return accepted.best == "text/html" or (request.method == "GET" and "text/html" in accepted)


def render(error: PscError) -> Response:
    """The one way an error leaves psc-idp: a page for a person, JSON for a program."""
    if error.detail:
        log.info("%s %s: %s (%s)", request.method, request.path, error.error, error.detail)
    if not error.for_programs and wants_page():
        reason = error.reason or error.error
        if reason not in REASONS:
            reason = "server_error" if error.status >= 500 else "bad_request"
        response = page(reason, error.status, technical=str(error.description or ""))
    else:
        response = jsonify(error.body())
        response.status_code = error.status
    response.headers.update(error.headers)
    return response
