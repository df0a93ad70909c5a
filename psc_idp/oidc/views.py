"""HTTP routes of the protocol, at PSC's paths under the issuer (psc.md §1)."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, jsonify, render_template, request

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
    response.cache_control.max_age = 300
    return response


@bp.route(PATHS["authorization_endpoint"], methods=["GET", "POST"])
def authorize():
    return authorize_endpoint.authorize()


@bp.post(PATHS["token_endpoint"])
def token():
    return idp().server.create_token_response()


@bp.route(PATHS["userinfo_endpoint"], methods=["GET", "POST"])
def userinfo():
    token = idp().protector.acquire_token(["openid"])
    return userinfo_response(token)


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
