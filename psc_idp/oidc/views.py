"""HTTP routes of the protocol, at PSC's paths under the issuer (psc.md §1)."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, jsonify, render_template, request

from ..extensions import db
from ..login.outcome import Failure
from . import authorize as authorize_endpoint
from .consts import PATHS
from .discovery import metadata
from .endpoints import userinfo_response

bp = Blueprint("oidc", __name__)


def idp():
    return current_app.extensions["psc_idp"]


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/wallet-openid-configuration")
def discovery():
    return jsonify(metadata())


@bp.get(PATHS["jwks_uri"])
def jwks():
    response = jsonify(idp().keys.jwks())
    # cached no longer than a new key is published before it signs (keys.lifecycle)
    response.cache_control.max_age = min(300, idp().settings["key_publish_delay"])
    return response


@bp.route(PATHS["authorization_endpoint"], methods=["GET", "POST"])
def authorize():
    return authorize_endpoint.authorize()


@bp.post(PATHS["token_endpoint"])
def token():
    """One transaction per token request: the code marked used (or the refresh token
    rotated), the new token rows and their audit record are committed together, after the
    whole response — ID token included — has been built."""
    response = idp().server.create_token_response()
    db.session.commit()
    return response


@bp.route(PATHS["userinfo_endpoint"], methods=["GET", "POST"])
def userinfo():
    try:
        token = idp().protector.acquire_token(["openid"])
    except OAuth2Error as error:
        return bearer_error(error)
    return userinfo_response(token)


def bearer_error(error: OAuth2Error):
    """RFC 6750 §3: 401 with ``WWW-Authenticate`` (403 for a scope the token lacks)."""
    code = "insufficient_scope" if error.error == "insufficient_scope" else "invalid_token"
    status = 403 if code == "insufficient_scope" else 401
    description = (error.description or "the access token is missing or invalid")[:200]
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    response.headers["WWW-Authenticate"] = (
        f'Bearer realm="psc-idp", error="{code}", '
        f'error_description="{description.replace(chr(34), chr(39))}"')
    return response


@bp.post(PATHS["introspection_endpoint"])
def introspect():
    return idp().server.create_endpoint_response("introspection")


@bp.post(PATHS["revocation_endpoint"])
def revoke():
    return idp().server.create_endpoint_response("revocation")


@bp.route(PATHS["end_session_endpoint"], methods=["GET", "POST"])
def logout():
    server = idp().server
    try:
        end = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        failure = Failure(error.error, "Demande de déconnexion invalide : " + error.description,
                          "Invalid logout request: " + error.description)
        return render_template("failure.html", failure=failure), 400
    if end.needs_confirmation and request.method == "GET":
        return render_template("logout_confirm.html", params=request.args)
    return server.create_endpoint_response("end_session", end) or render_template(
        "logged_out.html")
