"""openid-client (Node, OpenID-certified relying-party library, from the npm registry) run
against a live psc-idp: discovery, code + PKCE, ID token validation, userinfo, refresh,
introspection, revocation and logout; CIBA on the e-CPS phone; a pushed authorization request
(RFC 9126) by a ``private_key_jwt`` client (RFC 7523); DPoP. Any deviation it reports is a
psc-idp bug."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from joserfc.jwk import RSAKey

from .ecps_support import activate_with_card
from .support import query

INTEROP = Path(__file__).with_name("interop")


def node(*args: str, ca: str) -> dict:
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": ca}
    done = subprocess.run([shutil.which("node") or "node", "openid_client.mjs", *args],
                          cwd=INTEROP, env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_openid_client_full_flow(idp, browser, demo_card, tmp_path):
    rp = idp.rp()
    common = [idp.issuer, rp.client_id, rp.client_secret, rp.redirect_uri,
              str(tmp_path / "checks.json")]
    url = node("start", *common, ca=idp.ca)["url"]
    assert query(url)["code_challenge_method"] == "S256"

    callback = browser.with_card(demo_card, url).headers["Location"]
    result = node("finish", *common, callback, ca=idp.ca)

    claims = result["id_token_claims"]
    assert claims["preferred_username"] == demo_card.id_nat and claims["acr"] == "eidas1"
    assert result["userinfo"]["SubjectRefPro"]["exercices"][0]["codeProfession"] == "10"
    assert result["refreshed_sub"] == claims["sub"] and result["rotated"] is True
    assert result["introspection"]["active"] is True
    assert result["introspection"]["SubjectNameID"] == demo_card.id_nat
    assert result["after_revocation"] == "invalid_grant"

    logout = browser.get(result["end_session_url"])
    assert logout.status_code == 302
    assert logout.headers["Location"] == "https://rp.example/logged-out?state=bye"


def test_openid_client_runs_ciba_on_the_e_cps_phone(idp, browser, demo_card, phone_factory):
    """openid-client's ``initiateBackchannelAuthentication`` then
    ``pollBackchannelAuthenticationGrant``: the professional approves on the phone while
    the library polls; then a refusal ends its poll with ``access_denied``."""
    phone = phone_factory("phone")
    activate_with_card(idp, browser, demo_card, phone)
    rp = idp.rp(backchannel_token_delivery_mode="poll")
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": idp.ca}

    def run(binding: str, decide: list[str]) -> tuple[dict, dict]:
        with subprocess.Popen(
                [shutil.which("node") or "node", "openid_client_ciba.mjs", idp.issuer,
                 rp.client_id, rp.client_secret, demo_card.id_nat, binding],
                cwd=INTEROP, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True) as library:
            started = json.loads(library.stdout.readline() or "{}")
            assert "started" in started, library.stderr.read()
            time.sleep(1.5)  # the library polls meanwhile: authorization_pending
            phone.ok(*decide)
            out, err = library.communicate(timeout=60)
            assert library.returncode == 0, err
        return started["started"], json.loads(out)

    started, result = run("42", ["approve", "--code", "42"])
    assert started["interval"] == 1 and started["expires_in"] == 120
    claims = result["id_token_claims"]
    assert claims["preferred_username"] == demo_card.id_nat and claims["authMode"] == "MOBILE"
    assert result["userinfo"]["SubjectNameID"] == demo_card.id_nat

    _, refused = run("17", ["deny"])
    assert refused == {"error": "access_denied"}


def test_openid_client_with_dpop(idp, browser, demo_card, tmp_path):
    """RFC 9449 as openid-client speaks it: ``dpop_jkt`` in the authorization request,
    the server nonce learnt from ``use_dpop_nonce`` and retried, DPoP-bound access
    tokens at userinfo, a refresh with the same key; the bound token without its proof is
    refused."""
    rp = idp.rp()
    common = [idp.issuer, rp.client_id, rp.client_secret, rp.redirect_uri,
              str(tmp_path / "dpop.json")]
    started = node("dpop-start", *common, ca=idp.ca)
    assert query(started["url"])["dpop_jkt"] == started["jkt"]

    callback = browser.with_card(demo_card, started["url"]).headers["Location"]
    result = node("dpop-finish", *common, callback, ca=idp.ca)

    assert result["token_type"].lower() == "dpop" == result["refreshed_token_type"].lower()
    assert result["userinfo"]["SubjectNameID"] == demo_card.id_nat
    assert result["introspection"]["token_type"] == "DPoP"
    assert result["introspection"]["cnf"] == {"jkt": started["jkt"]}
    assert result["without_proof"] == "invalid_token", result["without_proof"]


def private_key_jwt_arguments(idp, rp, client_key, tmp_path) -> list[str]:
    """The script's arguments for a private_key_jwt client: its private JWK in a file."""
    key_file = tmp_path / "rp-key.json"
    key_file.write_text(json.dumps({**RSAKey.import_key(client_key.key).as_dict(private=True),
                                    "kid": client_key.kid}))
    return [idp.issuer, rp.client_id, f"jwk:{key_file}", rp.redirect_uri,
            str(tmp_path / "checks.json")]


def test_openid_client_pushed_request_with_private_key_jwt(idp, browser, demo_card, tmp_path,
                                                           client_key):
    """openid-client pushes the request with its assertion, then sends only client_id and
    request_uri: psc-idp requires it of this client and serves the whole flow."""
    rp = idp.rp(auth_method="private_key_jwt", jwks=client_key.jwks,
                require_pushed_authorization_requests=True)
    common = private_key_jwt_arguments(idp, rp, client_key, tmp_path)
    url = node("start-par", *common, ca=idp.ca)["url"]
    assert set(query(url)) == {"client_id", "request_uri"}
    assert query(url)["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")

    callback = browser.with_card(demo_card, url).headers["Location"]
    result = node("finish", *common, callback, ca=idp.ca)
    assert result["id_token_claims"]["preferred_username"] == demo_card.id_nat
    assert result["introspection"]["active"] is True
    assert result["after_revocation"] == "invalid_grant"
    assert browser.get(url).status_code == 400  # the request_uri was used


def test_openid_client_as_a_fapi2_client(idp, browser, demo_card, tmp_path, client_key):
    """PAR + DPoP + private_key_jwt end to end, as openid-client does them, for a client
    held to the FAPI 2.0 Security Profile: the pushed request carries dpop_jkt, the tokens
    are DPoP-bound, userinfo and refresh prove the key, the bound token alone is refused."""
    rp = idp.rp(auth_method="private_key_jwt", jwks=client_key.jwks,
                fapi2_security_profile=True)
    common = private_key_jwt_arguments(idp, rp, client_key, tmp_path)
    started = node("dpop-par-start", *common, ca=idp.ca)
    assert set(query(started["url"])) == {"client_id", "request_uri"}

    callback = browser.with_card(demo_card, started["url"]).headers["Location"]
    result = node("dpop-finish", *common, callback, ca=idp.ca)
    assert result["token_type"].lower() == "dpop" == result["refreshed_token_type"].lower()
    assert result["userinfo"]["SubjectNameID"] == demo_card.id_nat
    assert result["introspection"]["cnf"] == {"jkt": started["jkt"]}
    assert result["without_proof"] == "invalid_token", result["without_proof"]
