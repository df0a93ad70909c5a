"""Back-channel logout on the relying party's side (OpenID Connect Back-Channel Logout 1.0
§2.6-2.8): ``POST /backchannel-logout`` receives the IdP's logout token, checks it with
PyJWT (independently of the IdP's own JOSE library) and ends the app sessions of that
``sid`` (or ``sub``). The app's sessions live in signed cookies the server cannot delete:
it remembers the ended sids, and every request of a session whose ID token carries one of
them starts signed out. (A real app with server-side sessions deletes them instead.)"""

from __future__ import annotations

import ssl
import threading
import time

import jwt
from flask import Flask, current_app, jsonify, request, session

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class InvalidLogoutToken(Exception):
    pass


def validate(token: str, *, issuer: str, client_id: str, jwks: jwt.PyJWKClient,
             algorithms: list[str]) -> dict:
    """§2.6: signature (the IdP's JWKS), iss, aud, iat, exp, typ, events, no nonce, sid or
    sub; the claims, or ``InvalidLogoutToken`` saying why."""
    try:
        if jwt.get_unverified_header(token).get("typ") != "logout+jwt":
            raise InvalidLogoutToken("typ must be logout+jwt")
        key = jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key, algorithms=algorithms, audience=client_id,
                            issuer=issuer, leeway=30,
                            options={"require": ["iss", "aud", "iat", "exp", "jti"]})
    except jwt.PyJWTError as exc:
        raise InvalidLogoutToken(str(exc)) from None
    if not isinstance(claims.get("events"), dict) or \
            not isinstance(claims["events"].get(EVENT), dict):
        raise InvalidLogoutToken(f"events must hold {EVENT}")
    if "nonce" in claims:
        raise InvalidLogoutToken("a logout token has no nonce")
    if not claims.get("sid") and not claims.get("sub"):
        raise InvalidLogoutToken("sid or sub is required")
    return claims


class EndedSessions:
    """The sids (and subjects, with the time) the IdP said are over; thread-safe."""

    def __init__(self):
        self._lock, self.sids, self.subs = threading.Lock(), set(), {}

    def end(self, claims: dict) -> None:
        with self._lock:
            if claims.get("sid"):
                self.sids.add(claims["sid"])
            else:
                self.subs[claims["sub"]] = claims["iat"]

    def ended(self, id_claims: dict) -> bool:
        with self._lock:
            return id_claims.get("sid") in self.sids or \
                id_claims.get("iat", 0) <= self.subs.get(id_claims.get("sub"), -1)


def setup(app: Flask, psc) -> None:
    """The route, and the check of every request's session."""
    ended = app.extensions["ended_sessions"] = EndedSessions()
    state: dict = {}

    def jwks_client() -> tuple[jwt.PyJWKClient, list[str]]:
        if "jwks" not in state:
            metadata = psc().load_server_metadata()
            ca_file = current_app.config["DEMO"].get("ca_file")
            context = ssl.create_default_context(cafile=ca_file) if ca_file else None
            state["jwks"] = (jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=context,
                                             timeout=5),
                             metadata.get("id_token_signing_alg_values_supported",
                                          ["RS256"]))
        return state["jwks"]

    @app.post("/backchannel-logout")
    def backchannel_logout():
        client, algorithms = jwks_client()
        try:
            claims = validate(request.form.get("logout_token", ""),
                              issuer=current_app.config["DEMO"]["issuer"],
                              client_id=current_app.config["DEMO"]["client_id"],
                              jwks=client, algorithms=algorithms)
        except InvalidLogoutToken as exc:
            answer = jsonify(error="invalid_request", error_description=str(exc))
            answer.status_code = 400
        else:
            ended.end(claims)
            answer = current_app.response_class(status=200)
        answer.headers["Cache-Control"] = "no-store"
        return answer

    @app.before_request
    def ended_by_the_idp():
        """A session whose IdP session ended (back-channel logout) starts signed out."""
        if "id_claims" in session and ended.ended(session["id_claims"]):
            for key in ("tokens", "userinfo", "id_claims", "activity"):
                session.pop(key, None)
            session["signed_out"] = True
            session["seen"] = time.time()
