"""HTTP routes of the protocol, at PSC's paths under the issuer (psc.md §1)."""

from __future__ import annotations

import functools

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, jsonify, redirect, render_template, request

from .. import errors
from ..extensions import db, idp
from . import authorize as authorize_endpoint
from . import ciba, dpop, dpop_binding, par, transactions
from .consts import PATHS
from .discovery import is_split, metadata
from .endpoints import userinfo_response
from .errors import printable

bp = Blueprint("oidc", __name__)


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/wallet-openid-configuration")
def discovery():
    response = jsonify(metadata())
    response.cache_control.public, response.cache_control.max_age = True, 300
    return response


@bp.get(PATHS["jwks_uri"])
def jwks():
    response = jsonify(idp().keys.jwks())
    # cached no longer than a new key is published before it signs (keys.lifecycle)
    response.cache_control.max_age = min(300, idp().settings.key_publish_delay)
    return response


@bp.route(PATHS["authorization_endpoint"], methods=["GET", "POST"])
def authorize():
    return authorize_endpoint.authorize()


def wallet_authorize():
    """The authorization endpoint at the configured ``authorization_endpoint`` (PSC's
    "wallet" host and path, psc.md §1). On the issuer's origin it is served in place; on
    another origin it hands the request over, unchanged (307 keeps a POST's body), to the
    issuer's endpoint, so that the login and the SSO session cookies live on one origin."""
    settings = idp().settings
    if not is_split(settings):
        return authorize_endpoint.authorize()
    target = settings.issuer + PATHS["authorization_endpoint"]
    query = request.query_string.decode("latin-1")
    return redirect(f"{target}?{query}" if query else target, code=307)


def single_valued(view):
    """RFC 6749 §3.1-§3.2: request parameters must not be included more than once."""
    @functools.wraps(view)
    def checked(*args, **kwargs):
        for values in (request.args, request.form):
            repeated = next((key for key, items in values.lists() if len(items) > 1), None)
            if repeated is not None:
                response = jsonify(error="invalid_request", error_description=(
                    f"parameter '{printable(repeated, 40)}' is repeated"))
                response.status_code = 400
                response.headers["Cache-Control"] = "no-store"
                return response
        return view(*args, **kwargs)
    return checked


@bp.post(PATHS["token_endpoint"])
@single_valued
def token():
    """One transaction per token request: the code marked used (or the refresh token
    rotated), the new token rows and their audit record are committed together, after the
    whole response — ID token included — has been built; a refusal leaves nothing (the
    code unused, the refresh token unrotated)."""
    server = idp().server
    try:
        dpop_binding.check_proof()
    except OAuth2Error as error:
        response = server.handle_response(*error())
    else:
        response = server.create_token_response()
    if response.status_code == 200:
        transactions.commit()
    else:
        db.session.rollback()
    if "DPoP" in request.headers:  # RFC 9449 §8.2: the nonce of the next proofs
        response.headers["DPoP-Nonce"] = dpop.nonce()
    return response


@bp.post(PATHS["backchannel_authentication_endpoint"])
def backchannel_authentication():
    """CIBA Core §7 (``ciba``)."""
    return ciba.authentication_request()
@bp.post(PATHS["pushed_authorization_request_endpoint"])
@single_valued
def pushed_authorization_request():
    return par.push()


@bp.route(PATHS["userinfo_endpoint"], methods=["GET", "POST"])
@transactions.read_only
def userinfo():
    """Any live access token of psc-idp, ``openid`` scope or not: PSC serves userinfo to
    the clients that ask for ``scope_all`` alone (psc.md §10)."""
    try:
        return userinfo_response(idp().protector.acquire_token())
    except OAuth2Error as error:  # the token, or its professional no longer active
        return bearer_error(error)


#: RFC 6750 §3.1 and RFC 9449 §7.1, §9: the error codes of a resource request and their
#: HTTP status
BEARER_ERRORS = {"invalid_request": 400, "invalid_token": 401, "insufficient_scope": 403,
                 "invalid_dpop_proof": 401, "use_dpop_nonce": 401}


def bearer_error(error: OAuth2Error):
    """RFC 6750 §3: the error with its status and ``WWW-Authenticate``; anything else
    about the token is ``invalid_token``. Errors about DPoP (a bound token, a proof) are a
    ``DPoP`` challenge with the accepted algorithms (RFC 9449 §7.1)."""
    code = error.error if error.error in BEARER_ERRORS else "invalid_token"
    status = BEARER_ERRORS[code]
    description = (error.description or "the access token is missing or invalid")[:200]
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    scheme = getattr(error, "scheme", "Bearer")
    algs = f', algs="{" ".join(dpop.ALGS)}"' if scheme == "DPoP" else ""
    response.headers["WWW-Authenticate"] = (
        f'{scheme} realm="psc-idp", error="{code}", '
        f'error_description="{description.replace(chr(34), chr(39))}"{algs}')
    if code == "use_dpop_nonce":
        response.headers["DPoP-Nonce"] = dpop.nonce()
    return response


@bp.post(PATHS["introspection_endpoint"])
@single_valued
@transactions.read_only
def introspect():
    return idp().server.create_endpoint_response("introspection")


@bp.post(PATHS["revocation_endpoint"])
@single_valued
def revoke():
    return idp().server.create_endpoint_response("revocation")


@bp.route(PATHS["end_session_endpoint"], methods=["GET", "POST"])
def logout():
    server = idp().server
    try:
        end = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return errors.page("invalid_logout_request", 400,
                           technical=f"{error.error}: {error.description}")
    if end.needs_confirmation and request.method == "GET":
        return render_template("logout_confirm.html", params=request.args)
    # no redirection: validate_request refused every post_logout_redirect_uri it cannot
    # honour, so none was sent; when an application asked, the page tells its developer
    return server.create_endpoint_response("end_session", end) or render_template(
        "logged_out.html", no_redirect_uri_from=end.client and end.client.client_id)
