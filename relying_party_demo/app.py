"""The demo relying party: login, the professional's identity and activities with their
labels, the choice of the activity for this session, a developer panel, refresh and logout
(PSC's rule: an explicit "se déconnecter" also ends the IdP session; an app timeout does not),
and back-channel logout (an IdP session that ends elsewhere ends the app's: ``backchannel``)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, abort, redirect, render_template, request, session, url_for

from . import backchannel
from . import claims as claim_help
from .i18n import DATE_CLAIMS, TEXTS, readable_time


def create_app(config: dict[str, Any]) -> Flask:
    """``config``: issuer, client_id, client_secret, ca_file (optional), secret_key,
    session_timeout (seconds, default 900)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.get("secret_key") or secrets.token_urlsafe(32),
        SESSION_COOKIE_NAME="demo_rp_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", DEMO=config,
    )
    app.extensions["oauth_app"] = _register_client(app, config)
    _routes(app)
    backchannel.setup(app, psc)  # POST /backchannel-logout (the IdP ends the session)
    return app


def _register_client(app: Flask, config: dict) -> FlaskOAuth2App:
    ca_file = config.get("ca_file")

    class Session(OAuth2Session):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.trust_env = False
            self.verify = ca_file or True

    class Client(FlaskOAuth2App):
        client_cls = Session

    oauth = OAuth(app)
    return oauth.register(
        "psc", client_cls=Client,
        client_id=config["client_id"], client_secret=config["client_secret"],
        # PSC's discovery document also lives at .well-known/wallet-openid-configuration
        server_metadata_url=config["issuer"] + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid scope_all", "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic"},
    )


def psc() -> FlaskOAuth2App:
    from flask import current_app

    return current_app.extensions["oauth_app"]


def lang() -> str:
    chosen = request.args.get("lang") or session.get("lang") or "fr"
    return chosen if chosen in TEXTS else "fr"


def _routes(app: Flask) -> None:
    @app.before_request
    def remember_language():
        if request.args.get("lang") in TEXTS:
            session["lang"] = request.args["lang"]

    @app.before_request
    def app_session_timeout():
        """The app's own session expires; PSC's rule: that does not log out of the IdP."""
        timeout = app.config["DEMO"].get("session_timeout", 900)
        seen = session.get("seen")
        if "tokens" in session and seen and time.time() - seen > timeout:
            for key in ("tokens", "userinfo", "id_claims", "activity"):
                session.pop(key, None)
            session["timed_out"] = True
        session["seen"] = time.time()

    @app.context_processor
    def texts():
        return {"t": TEXTS[lang()], "lang": lang(), "labels": claim_help,
                "when": lambda seconds: readable_time(seconds, lang()),
                "date_claims": DATE_CLAIMS}

    @app.get("/")
    def home():
        if "state" in request.args:  # back from the IdP's logout (post_logout_redirect_uri)
            return signed_out()
        if "tokens" not in session:
            return render_template("home.html", timed_out=session.pop("timed_out", False),
                                   signed_out=session.pop("signed_out", False))
        info = session["userinfo"]
        return render_template("profile.html", info=info, claims=session["id_claims"],
                               activities=claim_help.activities(info),
                               chosen=session.get("activity"))

    @app.get("/login")
    def login():
        return psc().authorize_redirect(url_for("callback", _external=True),
                                        acr_values="eidas1", ui_locales=lang())

    @app.get("/callback")
    def callback():
        """Back from the IdP: the code and state leave the address bar at once (a redirect
        to a clean URL, whatever the outcome)."""
        if request.args.get("error"):
            session["login_error"] = (request.args["error"][:100],
                                      request.args.get("error_description", "")[:300])
            return redirect(url_for("login_error"))
        try:
            token = psc().authorize_access_token()
        except Exception as exc:  # Authlib raises OAuthError / requests errors
            session["login_error"] = (type(exc).__name__, str(exc)[:300])
            return redirect(url_for("login_error"))
        # PSC puts the professional data in userinfo only (psc.md §9)
        userinfo = psc().userinfo(token=token)
        session["tokens"] = {k: token[k] for k in ("access_token", "id_token",
                                                   "refresh_token", "expires_at") if k in token}
        session["id_claims"] = dict(token["userinfo"])
        session["userinfo"] = dict(userinfo)
        session.pop("activity", None)
        return redirect(url_for("home"))

    @app.get("/login-error")
    def login_error():
        if "login_error" not in session:
            return redirect(url_for("home"))
        error, description = session.pop("login_error")
        return render_template("error.html", error=error, description=description), 400

    def signed_out():
        """The IdP's logout ended: its state is checked, then the address bar is cleaned."""
        try:
            psc().validate_logout_response()
            session["signed_out"] = True
        except OAuthError:
            pass  # not the answer to our logout: just a home page with a stray parameter
        return redirect(url_for("home"))

    @app.post("/activity")
    def choose_activity():
        if "tokens" not in session:
            return redirect(url_for("home"))
        key = request.form.get("activity", "")
        if key not in {a["key"] for a in claim_help.activities(session["userinfo"])}:
            abort(400)
        session["activity"] = key
        return redirect(url_for("home"))

    @app.post("/refresh")
    def refresh():
        tokens = session.get("tokens")
        if not tokens or "refresh_token" not in tokens:
            return redirect(url_for("home"))
        metadata = psc().load_server_metadata()
        with psc()._get_oauth_client(**metadata) as client:
            new = client.refresh_token(metadata["token_endpoint"],
                                       refresh_token=tokens["refresh_token"])
        session["tokens"] = {k: new[k] for k in ("access_token", "id_token", "refresh_token",
                                                 "expires_at") if k in new}
        session["refreshed_at"] = int(time.time())
        return redirect(url_for("developer"))

    @app.post("/logout")
    def logout():
        """Explicit logout: end the app session *and* the IdP session (PSC's rule)."""
        tokens = session.pop("tokens", None) or {}
        for key in ("userinfo", "id_claims", "activity"):
            session.pop(key, None)
        if not tokens.get("id_token"):
            session["signed_out"] = True
            return redirect(url_for("home"))
        return psc().logout_redirect(post_logout_redirect_uri=url_for("home", _external=True),
                                     id_token_hint=tokens["id_token"])

    @app.get("/developer")
    def developer():
        if "tokens" not in session:
            return redirect(url_for("home"))
        tokens = session["tokens"]
        jwks = psc().fetch_jwk_set(force=True)  # fresh: the keys may have rotated
        decoded = {name: claim_help.decode_jwt(tokens[name], jwks)
                   for name in ("id_token", "access_token") if name in tokens}
        return render_template("developer.html", decoded=decoded, userinfo=session["userinfo"],
                               sources=claim_help.SOURCES, refreshed=session.get("refreshed_at"))
