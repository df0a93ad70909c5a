"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validate the request
with Authlib, reuse the browser's SSO session when ``prompt``/``max_age`` allow it,
otherwise start an interaction (``interaction``) and resume once the professional has
logged in.

As PSC (psc.md §10): ``openid`` is not required (``scope=scope_all`` alone is served),
scopes psc-idp does not know are left out of the grant rather than refused. Every error
sent back to the client carries its ``state`` unchanged; responses go back as a query
(default) or an auto-submitted form (``response_mode=form_post``)."""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import LoginRequiredError
from flask import Response, redirect, url_for
from flask import request as flask_request

from .. import errors
from ..extensions import idp
from ..settings import current as settings
from . import interaction, par, response_mode
from .errors import printable
from .subject import Subject


def server():
    return idp().server


def authorize():
    request = flask_request
    try:
        request = par.effective_request(request)  # request_uri, request (RFC 9126, 9101)
        # Authlib answers prompt=none with login_required unless it knows the user.
        grant = server().get_consent_grant(request, end_user=interaction.current_subject())
        data = grant.request.payload.data
        _check_parameters(grant, data)
        subject = interaction.current_subject(_max_age(grant))
        prompts = set((data.get("prompt") or "").split())
        if subject is not None and "login" in prompts:
            subject = None
        if subject is None and "none" in prompts:
            raise LoginRequiredError(redirect_uri=grant.redirect_uri)
    except OAuth2Error as error:
        return authorization_error(error, request.values)
    if subject is not None:
        return _respond(grant, server().create_authorization_response(
            request, grant_user=subject, grant=grant))
    tx = interaction.start(grant.request)
    return redirect(url_for("login.page", tx=tx.id))


def abandon(request, error: str, description: str):
    """The professional went back to the application without signing in: the client of
    the stored ``request`` hears ``error`` (``access_denied``, ``temporarily_unavailable``)
    with its ``state``, at its validated redirect URI and in its response mode, so the
    application can react."""
    try:
        grant = server().get_consent_grant(request=request, end_user=None)
    except OAuth2Error as refused:
        return authorization_error(refused, request.args)
    answer = OAuth2Error(description, redirect_uri=grant.redirect_uri)
    answer.error = error
    return authorization_error(answer, request.args)


def resume(request, subject: Subject):
    """Replay the stored ``request`` now that ``subject`` has logged in."""
    try:
        grant = server().get_consent_grant(request=request, end_user=subject)
    except OAuth2Error as error:
        return authorization_error(error, request.args)
    return _respond(grant, server().create_authorization_response(
        request, grant_user=subject, grant=grant))


MAX_PARAMETER = 2048
#: parameters of an authorization request that must not be repeated (RFC 6749 §3.1);
#: Authlib checks response_type, client_id, redirect_uri, scope, state and PKCE's
SINGLE = ("nonce", "prompt", "max_age", "acr_values", "login_hint", "response_mode",
          "ui_locales", "request", "request_uri")


def _check_parameters(grant, data) -> None:
    """What Authlib leaves to the provider: parameters of sane size (they are stored until
    the login ends), not repeated, a supported response mode."""
    redirect_uri = grant.redirect_uri
    for name, value in data.items():
        if isinstance(value, str) and len(value) > MAX_PARAMETER:
            raise InvalidRequestError(f"'{printable(name, 40)}' is longer than "
                                      f"{MAX_PARAMETER} characters", redirect_uri=redirect_uri)
    for name in SINGLE:
        if len(grant.request.payload.datalist.get(name, [])) > 1:
            raise InvalidRequestError(f"Multiple '{name}' in request.", redirect_uri=redirect_uri)
    response_mode.check(data.get("response_mode"), redirect_uri)


def _max_age(grant) -> int | None:
    value = grant.request.payload.data.get("max_age")
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 10:
        raise InvalidRequestError("'max_age' must be a non-negative integer",
                                  redirect_uri=grant.redirect_uri)
    return int(value)


def _respond(grant, response: Response) -> Response:
    """The authorization response in the mode the client asked for."""
    return response_mode.deliver(response, grant.redirect_uri,
                                 grant.request.payload.data.get("response_mode"))


def authorization_error(error: OAuth2Error, data):
    """RFC 6749 §4.1.2.1: redirect only to a validated redirect URI, with the request's
    ``state`` exactly as received (``data``: the request's parameters) and ``iss``
    (RFC 9207 §2), in the requested response mode when it is a supported one; otherwise
    tell the person, never redirect."""
    if error.redirect_uri:
        error.state = data.get("state")
        issuer = settings().issuer
        _, _, headers = error()
        location = add_params_to_uri(dict(headers)["Location"], {"iss": issuer})
        mode = data.get("response_mode")
        return response_mode.deliver(redirect(location), error.redirect_uri,
                                     mode if response_mode.supported(mode) else None)
# the page says what the person may do; the wire description, in English, is shown as
    # the technical detail for the application's developer
    return errors.page(error.error if error.error in errors.REASONS else "invalid_request", 400,
                       technical=error.get_error_description() or error.error)
