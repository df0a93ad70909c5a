"""Request objects (RFC 9101) by value, at the authorization endpoint and at the PAR
endpoint: signed with a key the client registered, in an algorithm it may use, by the
client for this issuer, short-lived; anything else is ``invalid_request_object``. By
default the object's parameters take precedence over the query's (OIDC Core §6.1, PSC's
Keycloak); a client registered with ``strict_request_objects`` has only the object's
(RFC 9101 §5). In process on both databases, and one journey over the real server."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from .support import code_from, s256
from .test_par import ISSUER, REDIRECT, goes_to_login, inproc, redirected  # noqa: F401


class Signer:
    """A relying party's key pair (generated here) and the request objects it signs."""

    def __init__(self, kind: str = "RSA", kid: str = "ro-1"):
        self.kid = kid
        if kind == "RSA":
            self.alg, self.key = "RS256", RSAKey.import_key(
                rsa.generate_private_key(public_exponent=65537, key_size=2048))
        else:
            self.alg, self.key = "ES256", ECKey.import_key(
                ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwks(self) -> dict:
        return {"keys": [{**self.key.as_dict(private=False), "kid": self.kid, "use": "sig"}]}

    def sign(self, claims: dict, alg: str | None = None) -> str:
        return jwt.encode({"alg": alg or self.alg, "kid": self.kid}, claims, self.key)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def claims_for(client_id: str, /, **overrides) -> dict:
    issued = int(time.time())
    claims = {"iss": client_id, "aud": ISSUER, "iat": issued, "exp": issued + 300,
              "client_id": client_id, "response_type": "code", "redirect_uri": REDIRECT,
              "scope": "openid scope_all", "state": "object-state", "nonce": "object-nonce",
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
              "code_challenge_method": "S256", **overrides}
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_signed_request_object_is_the_request(inproc, signer):  # noqa: F811
    client_id, _ = inproc.client(jwks=signer.jwks)
    request = signer.sign(claims_for(client_id, max_age=600))
    assert goes_to_login(inproc.authorize(client_id=client_id, response_type="code",
                                          request=request, state="query-state"))
    stored = inproc.pending_request()
    assert stored["state"] == "object-state" and stored["nonce"] == "object-nonce"
    assert stored["max_age"] == "600" and "request" not in stored


def test_query_parameters_fill_in_unless_the_client_is_strict(inproc, signer):  # noqa: F811
    """OIDC Core §6.1 (PSC's Keycloak): a pre-signed object with a per-request state."""
    lenient, _ = inproc.client(jwks=signer.jwks)
    strict, _ = inproc.client(jwks=signer.jwks, strict_request_objects=True)
    for client_id in (lenient, strict):
        request = signer.sign(claims_for(client_id, state=None))
        assert goes_to_login(inproc.authorize(client_id=client_id, request=request,
                                              state="query-state", ui_locales="en"))
        stored = inproc.pending_request()
        expected = "query-state" if client_id == lenient else None
        assert stored.get("state") == expected and stored["nonce"] == "object-nonce"


def test_an_ec_key_and_the_registered_alg(inproc):  # noqa: F811
    es = Signer("EC")
    client_id, _ = inproc.client(jwks=es.jwks, request_object_signing_alg="ES256")
    assert goes_to_login(inproc.authorize(client_id=client_id,
                                          request=es.sign(claims_for(client_id))))


def object_refused(inproc, client_id: str, request: str, fragment: str = "") -> None:  # noqa: F811
    """The error goes to the query's redirect URI, registered for the client."""
    answer = redirected(inproc.authorize(client_id=client_id, request=request,
                                         redirect_uri=REDIRECT, state="query-state"))
    assert answer["error"] == "invalid_request_object", answer
    assert answer["state"] == "query-state" and fragment in answer["error_description"]


def test_alg_none_is_refused(inproc, signer):  # noqa: F811
    client_id, _ = inproc.client(jwks=signer.jwks)
    unsigned = f"{_b64({'alg': 'none'})}.{_b64(claims_for(client_id))}."
    object_refused(inproc, client_id, unsigned)


def test_a_key_the_client_did_not_register_is_refused(inproc, signer):  # noqa: F811
    client_id, _ = inproc.client(jwks=signer.jwks)
    object_refused(inproc, client_id, Signer().sign(claims_for(client_id)), "signature")


def test_a_client_without_keys_cannot_send_objects(inproc, signer):  # noqa: F811
    client_id, _ = inproc.client()
    object_refused(inproc, client_id, signer.sign(claims_for(client_id)), "no registered keys")


def test_an_alg_the_client_did_not_register_is_refused(inproc, signer):  # noqa: F811
    client_id, _ = inproc.client(jwks=signer.jwks, request_object_signing_alg="PS256")
    object_refused(inproc, client_id, signer.sign(claims_for(client_id)), "PS256")


@pytest.mark.parametrize("overrides, fragment", [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"exp": None}, "exp"),
    ({"exp": int(time.time()) + 7 * 86400}, "at most"),
    ({"nbf": int(time.time()) + 3000}, "nbf"),
    ({"aud": "https://other-idp.example"}, "aud"),
    ({"aud": None}, "aud"),
    ({"iss": "someone-else"}, "iss"),
    ({"client_id": "someone-else"}, "client_id"),
    ({"request_uri": "https://rp.example/x"}, "request_uri"),
], ids=["expired", "no-exp", "exp-too-far", "not-yet", "wrong-aud", "no-aud", "wrong-iss",
        "other-client_id", "nested"])
def test_claims_that_do_not_fit_are_refused(inproc, signer, overrides, fragment):  # noqa: F811
    client_id, _ = inproc.client(jwks=signer.jwks)
    object_refused(inproc, client_id, signer.sign(claims_for(client_id, **overrides)), fragment)


def test_an_encrypted_or_garbled_object_is_refused(inproc, signer):  # noqa: F811
    client_id, _ = inproc.client(jwks=signer.jwks)
    object_refused(inproc, client_id, "a.b.c.d.e", "encrypted")
    object_refused(inproc, client_id, "e30.e30.e30")


def test_an_object_for_another_client_id_gets_a_page(inproc, signer):  # noqa: F811
    client_id, _ = inproc.client(jwks=signer.jwks)
    response = inproc.authorize(client_id="nobody-here", request=signer.sign(
        claims_for(client_id)), redirect_uri=REDIRECT)
    assert response.status_code == 400 and "Location" not in response.headers


# --- at the PAR endpoint ------------------------------------------------------------------

def test_a_pushed_request_object_is_the_whole_pushed_request(inproc, signer):  # noqa: F811
    """RFC 9126 §3: only the client's credentials travel beside the object."""
    client_id, secret = inproc.client(jwks=signer.jwks)
    response = inproc.push({"request": signer.sign(claims_for(client_id)),
                            "state": "beside-the-object"}, client_id, secret)
    assert response.status_code == 201, response.get_json()
    request_uri = response.get_json()["request_uri"]
    assert goes_to_login(inproc.authorize(client_id=client_id, request_uri=request_uri))
    assert inproc.pending_request()["state"] == "object-state"


@pytest.mark.parametrize("mangle", ["none", "wrong-key", "expired"])
def test_a_bad_pushed_object_gets_a_json_error(inproc, signer, mangle):  # noqa: F811
    client_id, secret = inproc.client(jwks=signer.jwks)
    if mangle == "none":
        request = f"{_b64({'alg': 'none'})}.{_b64(claims_for(client_id))}."
    elif mangle == "wrong-key":
        request = Signer().sign(claims_for(client_id))
    else:
        request = signer.sign(claims_for(client_id, exp=int(time.time()) - 3600))
    response = inproc.push({"request": request}, client_id, secret)
    assert response.status_code == 400 and "Location" not in response.headers
    assert response.get_json()["error"] == "invalid_request_object"


def test_discovery_advertises_request_objects(inproc):  # noqa: F811
    meta = inproc.http.get("/auth/realms/esante-wallet/.well-known/openid-configuration",
                           base_url="https://localhost:5443").get_json()
    assert meta["request_parameter_supported"] is True
    assert meta["request_object_signing_alg_values_supported"] == ["RS256", "PS256", "ES256"]
    assert "none" not in meta["request_object_signing_alg_values_supported"]


# --- the real server ----------------------------------------------------------------------

def test_a_request_object_then_a_card_login_gives_a_code(idp, browser, demo_card, signer):
    rp = idp.rp(jwks=signer.jwks, strict_request_objects=True)
    issued = int(time.time())
    request = signer.sign({
        "iss": rp.client_id, "aud": idp.issuer, "exp": issued + 120, "iat": issued,
        "client_id": rp.client_id, "response_type": "code", "redirect_uri": rp.redirect_uri,
        "scope": "openid scope_all", "state": rp.state, "nonce": rp.nonce,
        "code_challenge": s256(rp.verifier), "code_challenge_method": "S256"})
    url = rp.url("authorization_endpoint") + "?" + urlencode(
        {"client_id": rp.client_id, "response_type": "code", "request": request})
    params = code_from(browser.with_card(demo_card, url))
    assert params["state"] == rp.state
    tokens = rp.exchange(params["code"]).json()
    assert rp.verify_id_token(tokens["id_token"])["nonce"] == rp.nonce

