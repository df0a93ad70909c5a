"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validate the request
with Authlib, reuse the browser's SSO session when ``prompt``/``max_age`` allow it,
otherwise hand over to the login flow and resume once the professional has logged in."""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError
from authlib.oidc.core.errors import LoginRequiredError
from flask import current_app, redirect, render_template, url_for

from ..login import flow
from ..login.outcome import Failure
from .models import LoginTransaction
from .subject import Subject


def server():
    return current_app.extensions["psc_idp"].server


def authorize():
    subject = None
    try:
        # Authlib answers prompt=none with login_required unless it knows the user.
        grant = server().get_consent_grant(end_user=flow.current_subject())
        data = grant.request.payload.data
        _check_parameters(grant, data)
        subject = flow.current_subject(_max_age(grant))
        prompts = set((data.get("prompt") or "").split())
        if subject is not None and "login" in prompts:
            subject = None
        if subject is None and "none" in prompts:
            raise LoginRequiredError(redirect_uri=grant.redirect_uri)
    except OAuth2Error as error:
        return authorization_error(error)
    if subject is not None:
        return server().create_authorization_response(grant_user=subject, grant=grant)
    tx = flow.start(grant.request)
    return redirect(url_for("login.page", tx=tx.id))


def resume(tx: LoginTransaction, subject: Subject):
    """Replay the stored request now that ``subject`` has logged in."""
    request = flow.replayed_request(tx)
    try:
        grant = server().get_consent_grant(request=request, end_user=subject)
    except OAuth2Error as error:
        return authorization_error(error)
    return server().create_authorization_response(request, grant_user=subject, grant=grant)


MAX_PARAMETER = 2048


def _check_parameters(grant, data) -> None:
    """What Authlib leaves to the provider: an OpenID request (``openid`` scope, PSC has no
    plain OAuth flow) and parameters of sane size (they are stored until the login ends)."""
    if "openid" not in (data.get("scope") or "").split():
        raise InvalidScopeError("the 'openid' scope is required",
                                redirect_uri=grant.redirect_uri)
    for name, value in data.items():
        if isinstance(value, str) and len(value) > MAX_PARAMETER:
            raise InvalidRequestError(f"'{name[:40]}' is longer than {MAX_PARAMETER} characters",
                                      redirect_uri=grant.redirect_uri)


def _max_age(grant) -> int | None:
    value = grant.request.payload.data.get("max_age")
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 10:
        raise InvalidRequestError("'max_age' must be a non-negative integer",
                                  redirect_uri=grant.redirect_uri)
    return int(value)


def authorization_error(error: OAuth2Error):
    """RFC 6749 §4.1.2.1: redirect only to a validated redirect URI (with ``iss``,
    RFC 9207 §2); otherwise tell the person, never redirect."""
    if error.redirect_uri:
        issuer = current_app.extensions["psc_idp"].settings["issuer"]
        _, _, headers = error()
        location = add_params_to_uri(dict(headers)["Location"], {"iss": issuer})
        return redirect(location)
    failure = Failure(
        error.error,
        "La demande de l'application est invalide : " + (error.description or error.error),
        "The application's request is invalid: " + (error.description or error.error),
    )
    return render_template("failure.html", failure=failure), 400
