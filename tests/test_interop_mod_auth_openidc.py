"""Apache mod_auth_openidc (the Debian package; an OpenID-certified relying party) in front of
an application, configured like ANS's own proof of concept for Pro Santé Connect
(ansforge/PSC-POC, api-client-side-components/apache2): the runnable Apache block of
docs/integrating.md, run as written against a live psc-idp whose authorization endpoint is
on a separate origin, as PSC's "wallet" host. mod_auth_openidc keeps all its checks (state,
nonce, PKCE, ID token signature/iss/aud, RFC 9207 iss, TLS of the IdP): any error it reports
is a psc-idp deviation."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from psc_idp.clients import create_client

from .plugins.apache import apache_env, doc_snippets
from .plugins.idp import free_port, running_idp
from .support import code_from, query

SITE = doc_snippets()["psc-site.conf"][1]
AUTHORIZE = "/protocol/openid-connect/auth"


@pytest.fixture
def wallet_idp(keys_dir, database_url, cards, smtp_server, tmp_path):
    """psc-idp with its authorization endpoint on a separate origin and path, as PSC's
    "wallet" host (``https://wallet.bas.psc.esante.gouv.fr/auth``)."""
    port = free_port()
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     authorization_endpoint=f"https://localhost:{port}/auth",
                     wallet_listen=f"127.0.0.1:{port}") as live:
        yield live


def register(idp, app_url: str) -> tuple[str, str]:
    """A confidential client (client_secret_basic) with the Apache site's URIs."""
    with idp.app.app_context():
        client, secret = create_client(
            name="apache mod_auth_openidc", redirect_uris=[app_url + "/protected/redirect_uri"],
            post_logout_redirect_uris=[app_url + "/"])
        return client.client_id, secret


def through_wallet(idp, browser, url: str) -> str:
    """The browser at the "wallet" authorization URL: handed, unchanged, to the issuer's
    origin (where the login and SSO cookies live); returns where it is sent."""
    wallet = browser.get(url)
    assert wallet.status_code == 307, wallet.text
    assert wallet.headers["Location"] == idp.issuer + AUTHORIZE + "?" + url.split("?", 1)[1]
    return wallet.headers["Location"]


def test_login_userinfo_and_logout_like_ans_proof_of_concept(wallet_idp, browser_factory,
                                                             demo_card, apache_site,
                                                             apache_backend):
    idp, browser = wallet_idp, browser_factory(wallet_idp)
    authorization_endpoint = idp.server.settings.authorization_endpoint  # "wallet" origin
    assert not authorization_endpoint.startswith(idp.issuer)
    apache = apache_site(SITE)
    client_id, secret = register(idp, apache.url)
    apache.start(apache_env(apache, idp, client_id, secret, apache_backend,
                            authorization_endpoint))

    to_idp = browser.get(apache.url + "/protected/")
    assert to_idp.status_code == 302, apache.log()
    assert to_idp.headers["Location"].startswith(authorization_endpoint + "?")
    request = query(to_idp.headers["Location"])
    assert request["client_id"] == client_id and request["response_type"] == "code"
    assert request["scope"] == "openid scope_all" and request["acr_values"] == "eidas1"
    assert request["code_challenge_method"] == "S256"
    assert request["state"] and request["nonce"]

    back = browser.with_card(demo_card, through_wallet(idp, browser, to_idp.headers["Location"]))
    assert back.headers["Location"].startswith(apache.url + "/protected/redirect_uri?")
    assert query(back.headers["Location"])["iss"] == idp.issuer
    landed = browser.get(back.headers["Location"])  # code → tokens → ID token → userinfo
    assert landed.status_code == 302, apache.log()
    assert landed.headers["Location"] == apache.url + "/protected/"

    forged = {"X-Remote-User": "810000000000", "OIDC_CLAIM_SubjectNameID": "810000000000"}
    page = browser.get(apache.url + "/protected/", headers=forged)
    assert page.status_code == 200, apache.log()
    assert page.json()["path"] == "/"
    seen = page.json()["headers"]
    # REMOTE_USER (the access log's %u) and X-Remote-User: preferred_username, the idNat
    assert apache.logged(f'{demo_card.id_nat} "GET /protected/ HTTP/1.1" 200'), apache.log()
    assert seen["X-Remote-User"] == demo_card.id_nat
    assert seen["OIDC_CLAIM_SubjectNameID"] == demo_card.id_nat
    assert seen["OIDC_CLAIM_acr"] == "eidas1" and seen["OIDC_CLAIM_authMode"] == "CARD"
    userinfo = json.loads(seen["OIDC_userinfo_json"])
    assert userinfo["preferred_username"] == demo_card.id_nat
    assert userinfo["SubjectRefPro"]["exercices"][0]["codeProfession"] == "10"
    assert userinfo["otherIds"][0]["identifiant"] == demo_card.id_nat

    # "Se déconnecter": mod_auth_openidc ends its session and sends the browser to
    # end_session_endpoint with id_token_hint and post_logout_redirect_uri
    logout = browser.get(apache.url + "/protected/redirect_uri?" + urlencode(
        {"logout": apache.url + "/"}))
    assert logout.status_code == 302, apache.log()
    end_session = query(logout.headers["Location"])
    assert logout.headers["Location"].startswith(idp.issuer + "/protocol/openid-connect/logout?")
    assert end_session["post_logout_redirect_uri"] == apache.url + "/"
    assert "id_token_hint" in end_session
    ended = browser.get(logout.headers["Location"])
    assert ended.status_code == 302 and ended.headers["Location"] == apache.url + "/"

    # both sessions are over: the app asks for a login again and the IdP shows its login
    # page instead of signing in silently
    again = browser.get(apache.url + "/protected/")
    assert again.headers["Location"].startswith(authorization_endpoint + "?"), apache.log()
    issuer_side = through_wallet(idp, browser, again.headers["Location"])
    assert "/login?tx=" in browser.get(issuer_side).headers["Location"]
    silent = browser.get(idp.rp().authorization_url(prompt="none"))
    assert code_from(silent)["error"] == "login_required"


def test_the_idp_certificate_is_verified(idp, cards, browser, apache_site, apache_backend):
    """OIDCSSLValidateServer On: with a CA bundle that does not hold the IdP's CA,
    mod_auth_openidc refuses to talk to it (nothing reaches the application)."""
    apache = apache_site(SITE)
    client_id, secret = register(idp, apache.url)
    apache.start(apache_env(apache, idp, client_id, secret, apache_backend,
                            idp.issuer + AUTHORIZE, ca=str(cards.pki.trust_anchor)))
    response = browser.get(apache.url + "/protected/")
    assert response.status_code == 500
    assert "SSL certificate problem" in apache.log(), apache.log()
