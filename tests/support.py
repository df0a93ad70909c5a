"""Test helpers that read as protocol transcripts: a relying party doing code + PKCE,
a browser that follows the login, and ``login.with_card(card)``."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from psc_idp.keys import jws
from psc_idp.oidc.consts import PATHS


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
        b"=").decode()


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class RelyingParty:
    """A confidential client (client_secret_basic by default) of the live server."""

    issuer: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    ca: str
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def url(self, name: str) -> str:
        return self.issuer + PATHS[name]

    def authorization_url(self, **overrides) -> str:
        params = {
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self.redirect_uri, "scope": "openid scope_all",
            "acr_values": "eidas1", "state": self.state, "nonce": self.nonce,
            "code_challenge": s256(self.verifier), "code_challenge_method": "S256",
        }
        params.update(overrides)
        params = {k: v for k, v in params.items() if v is not None}
        return f"{self.url('authorization_endpoint')}?{urlencode(params)}"

    def post(self, name: str, data: dict, auth: str = "basic", **kwargs) -> requests.Response:
        """``auth``: basic, post, both (the same credentials in Basic and in the body, as
        the PHP League provider sends them) or none."""
        if auth in ("basic", "both"):
            kwargs["auth"] = (self.client_id, self.client_secret)
        if auth in ("post", "both"):
            data = {**data, "client_id": self.client_id, "client_secret": self.client_secret}
        return requests.post(self.url(name), data=data, verify=self.ca, timeout=10, **kwargs)

    def exchange(self, code: str, verifier: str | None = "default", data_extra=None, **kwargs):
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri, **(data_extra or {})}
        verifier = self.verifier if verifier == "default" else verifier
        if verifier is not None:
            data["code_verifier"] = verifier
        return self.post("token_endpoint", data, **kwargs)

    def refresh(self, refresh_token: str, **kwargs):
        return self.post("token_endpoint",
                         {"grant_type": "refresh_token", "refresh_token": refresh_token},
                         **kwargs)

    def jwks(self) -> dict:
        return requests.get(self.url("jwks_uri"), verify=self.ca, timeout=10).json()

    def verify_id_token(self, token: str) -> dict:
        return jws.decode(token, self.jwks(), iss={"essential": True, "value": self.issuer},
                          aud={"essential": True, "value": self.client_id},
                          exp={"essential": True})

    def userinfo(self, access_token: str, method: str = "GET") -> requests.Response:
        return requests.request(method, self.url("userinfo_endpoint"), verify=self.ca,
                                headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


class Browser:
    """A cookie-keeping user agent; the card step goes through curl with the SoftHSM key."""

    def __init__(self, ca: str, card_curl):
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override ``verify``
        self.session.verify = ca
        self.card_curl = card_curl

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=10, **kwargs)

    def start(self, authorization_url: str) -> str:
        """Follow the authorization request to the login page; returns the card URL."""
        response = self.get(authorization_url)
        assert response.status_code == 302, response.text
        page = self.get(urljoin(response.url, response.headers["Location"]))
        assert page.status_code == 200, page.text
        assert "<title>Connexion — psc-idp</title>" in page.text
        return re.search(r'id="card-login" href="([^"]+)"', page.text).group(1).replace(
            "&amp;", "&")

    def with_card(self, card, authorization_url: str) -> requests.Response:
        """The whole card login; returns the IdP's final response (redirect to the RP)."""
        card_url = self.start(authorization_url)
        status, headers, body = self.card_curl(card, card_url)
        assert status == 302, body
        return self.get(headers["location"])


def code_from(response: requests.Response) -> dict:
    assert response.status_code == 302, response.text
    return query(response.headers["Location"])
