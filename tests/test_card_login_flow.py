"""The whole flow a relying party sees, with a CPS card whose key lives in SoftHSM:
authorization request → card TLS login → code → token (PKCE + client auth) → ID token
verified against the JWKS → userinfo shaped like psc.md §3 → refresh → introspection →
revocation → logout."""

import base64
import json
from pathlib import Path

import requests

from .support import code_from

PSC_EXAMPLE_KEYS = [
    "sub", "preferred_username", "SubjectNameID", "given_name", "family_name",
    "email_verified", "authMode", "Palier_Authentification", "Secteur_Activite",
    "SubjectOrganization", "SubjectOrganizationID", "SubjectRole", "PSI_Locale",
    "Mode_Acces_Raison", "Acces_Regulation_Medicale", "UITVersion", "otherIds", "SubjectRefPro",
]


def test_full_card_flow(idp, browser, demo_card):
    rp = idp.rp()
    response = browser.with_card(demo_card, rp.authorization_url())
    params = code_from(response)
    assert response.headers["Location"].startswith(rp.redirect_uri)
    assert params["state"] == rp.state
    assert params["iss"] == idp.issuer  # RFC 9207

    tokens = rp.exchange(params["code"]).json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 120
    assert "refresh_token" in tokens

    claims = rp.verify_id_token(tokens["id_token"])
    assert claims["nonce"] == rp.nonce
    assert claims["sub"] == f"f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:{demo_card.id_nat}"
    assert claims["preferred_username"] == claims["SubjectNameID"] == demo_card.id_nat
    assert claims["acr"] == "eidas1" and claims["authMode"] == "CARD"
    assert set(claims["amr"]) == {"sc", "pin", "mfa"}
    assert claims["given_name"] == "KIT" and claims["family_name"] == "DOC0024566"
    for name in ("iss", "aud", "exp", "iat", "auth_time", "sid", "at_hash"):
        assert name in claims

    userinfo = rp.userinfo(tokens["access_token"])
    assert userinfo.status_code == 200
    body = userinfo.json()
    expected = json.loads(Path(__file__).with_name("psc_userinfo_example.json").read_text())
    assert list(body) == PSC_EXAMPLE_KEYS
    assert body == expected
    assert rp.userinfo(tokens["access_token"], method="POST").json() == body

    refreshed = rp.refresh(tokens["refresh_token"]).json()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert rp.verify_id_token(refreshed["id_token"])["sid"] == claims["sid"]

    introspection = rp.post("introspection_endpoint", {"token": refreshed["access_token"]})
    info = introspection.json()
    assert info["active"] is True and info["SubjectNameID"] == demo_card.id_nat
    assert info["client_id"] == rp.client_id and info["username"] == demo_card.id_nat
    for name in ("scope", "exp", "iat", "sub"):
        assert name in info

    assert rp.post("revocation_endpoint", {"token": refreshed["refresh_token"],
                                           "token_type_hint": "refresh_token"}).status_code == 200
    assert rp.refresh(refreshed["refresh_token"]).json()["error"] == "invalid_grant"
    assert rp.post("introspection_endpoint",
                   {"token": refreshed["access_token"]}).json() == {"active": False}

    logout = browser.get(rp.url("end_session_endpoint") + "?" + requests.compat.urlencode({
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": idp.logout_uri,
        "state": "bye"}))
    assert logout.status_code == 302
    assert logout.headers["Location"] == idp.logout_uri + "?state=bye"
    # the SSO session is over: a silent request now needs a login
    silent = browser.get(rp.authorization_url(prompt="none"))
    assert code_from(silent)["error"] == "login_required"


def test_single_sign_on_reuses_the_session(idp, browser, demo_card):
    rp = idp.rp()
    code_from(browser.with_card(demo_card, rp.authorization_url()))
    second = idp.rp()
    params = code_from(browser.get(second.authorization_url(prompt="none")))
    assert "code" in params
    assert second.exchange(params["code"]).status_code == 200


def test_prompt_login_and_max_age_force_a_new_login(idp, browser, demo_card):
    rp = idp.rp()
    code_from(browser.with_card(demo_card, rp.authorization_url()))
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        response = browser.get(rp.authorization_url(**extra))
        assert "/login?tx=" in response.headers["Location"]


def test_client_secret_post(idp, browser, demo_card):
    rp = idp.rp(auth_method="client_secret_post")
    params = code_from(browser.with_card(demo_card, rp.authorization_url()))
    assert rp.exchange(params["code"], auth="post").status_code == 200


def test_userinfo_as_signed_jwt(idp, browser, demo_card):
    rp = idp.rp(userinfo_alg="ES256")
    params = code_from(browser.with_card(demo_card, rp.authorization_url()))
    access = rp.exchange(params["code"]).json()["access_token"]
    response = rp.userinfo(access)
    assert response.headers["Content-Type"] == "application/jwt"
    claims = rp.verify_id_token(response.text)
    assert claims["SubjectNameID"] == demo_card.id_nat and "SubjectRefPro" in claims


def test_id_token_per_client_algorithm(idp, browser, demo_card):
    code_from(browser.with_card(demo_card, idp.rp().authorization_url()))
    for alg in ("ES256", "PS256"):
        rp = idp.rp(id_token_alg=alg)
        params = code_from(browser.get(rp.authorization_url()))  # single sign-on
        id_token = rp.exchange(params["code"]).json()["id_token"]
        header = json.loads(base64.urlsafe_b64decode(
            id_token.split(".")[0] + "=="))
        assert header["alg"] == alg
        assert rp.verify_id_token(id_token)["sub"].endswith(demo_card.id_nat)


def test_discovery_documents(idp):
    for path in ("/.well-known/openid-configuration", "/.well-known/wallet-openid-configuration"):
        doc = requests.get(idp.issuer + path, verify=idp.ca, timeout=10).json()
        assert doc["issuer"] == idp.issuer
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert doc["authorization_endpoint"] == idp.issuer + "/protocol/openid-connect/auth"
        assert doc["authorization_response_iss_parameter_supported"] is True
        for endpoint in ("token_endpoint", "userinfo_endpoint", "jwks_uri",
                         "introspection_endpoint", "revocation_endpoint",
                         "end_session_endpoint"):
            assert requests.options(doc[endpoint], verify=idp.ca, timeout=10).status_code < 500
