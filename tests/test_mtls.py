"""mTLS (RFC 8705) as protocol transcripts over real TLS, on both databases: the relying
parties' keys live in SoftHSM tokens and curl signs the handshake through the PKCS#11
engine, as the cards do. ``tls_client_auth`` with sandbox organisation certificates (good,
wrong DN, untrusted CA, revoked), ``self_signed_tls_client_auth`` (registered key, another
key), certificate-bound access tokens at userinfo (no certificate, another certificate,
the right one) and introspection (``cnf``), a public client's bound refresh token, and a
discovery document that advertises what works."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from psc_idp import create_app
from psc_idp.keys import jws
from psc_idp.oidc.consts import PATHS
from psc_idp.sandbox.cards import USER_PIN

from .plugins.idp import base_settings, free_port, running_idp
from .plugins.orgs import ORGANISATION  # noqa: F401 (the orgs fixture: tests.plugins.orgs)
from .support import code_from


def mtls_settings(pki) -> dict:
    port = free_port()
    return {"mtls_listen": f"127.0.0.1:{port}", "mtls_url": f"https://localhost:{port}",
            "org_trust_anchors": [str(pki.trust_anchor)],
            "org_intermediates": [str(pki.org_ca)], "org_crls": [str(pki.org_crl)]}


@pytest.fixture
def idp(keys_dir, database_url, cards, orgs, smtp_server, tmp_path):
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     **mtls_settings(cards.pki)) as live:
        settings = live.app.extensions["psc_idp"].settings
        live.mtls = settings.mtls_url + urlsplit(live.issuer).path
        yield live


def curl(cards, org, url: str, data: dict | None = None, headers: dict | None = None):
    """POST ``data`` (GET without) to ``url`` presenting ``org``'s certificate, its key in
    SoftHSM (None: no certificate). Returns (status, JSON body or text)."""
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body"
        argv = ["curl", "-sS", "--max-time", "20", "--cacert", str(cards.pki.tls_ca),
                "-o", str(body), "-w", "%{http_code}"]
        if org is not None:
            argv += ["--engine", "pkcs11", "--key-type", "ENG",
                     "--key", f"{org.pkcs11_uri};pin-value={USER_PIN}",
                     "--cert", org.certificate]
        for name, value in (data or {}).items():
            argv += ["--data-urlencode", f"{name}={value}"]
        for name, value in (headers or {}).items():
            argv += ["-H", f"{name}: {value}"]
        done = subprocess.run([*argv, url], env=cards.hsm.curl_env(), capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        text = body.read_text()
        try:
            return int(done.stdout), json.loads(text)
        except ValueError:
            return int(done.stdout), text


def token_request(cards, idp, org, client_id: str, **data):
    return curl(cards, org, idp.mtls + PATHS["token_endpoint"],
                {"client_id": client_id, **data})


def bogus_code(cards, idp, org, client_id: str):
    """A token request whose code is wrong: client authentication decides the answer
    (invalid_grant once the client is authenticated)."""
    return token_request(cards, idp, org, client_id, grant_type="authorization_code",
                         code="no-such-code", redirect_uri="https://rp.example/cb",
                         code_verifier="v" * 43)


def thumbprint(org) -> str:
    from cryptography import x509

    from psc_idp.oidc.mtls import thumbprint as x5t

    return x5t(x509.load_pem_x509_certificate(Path(org.certificate).read_bytes()))


# --- client authentication -------------------------------------------------------------

def test_tls_client_auth_good_wrong_dn_untrusted_revoked(idp, cards, orgs):
    def client_for(org):
        return idp.rp(auth_method="tls_client_auth",
                      tls_client_auth_subject_dn=org.subject_dn).client_id

    good = client_for(orgs.good)
    status, body = bogus_code(cards, idp, orgs.good, good)  # authenticated: the code is wrong
    assert (status, body["error"]) == (400, "invalid_grant"), body

    status, body = bogus_code(cards, idp, orgs.other, good)  # a trusted certificate, not its
    assert (status, body["error"]) == (401, "invalid_client")
    assert "OU=1750000002,O=CLINIQUE DES TESTS,C=FR) is not the one registered" in \
        body["error_description"]

    for org, reason in ((orgs.untrusted, "untrusted"), (orgs.revoked, "revoked")):
        status, body = bogus_code(cards, idp, org, client_for(org))
        assert (status, body["error"]) == (401, "invalid_client"), body
        assert f"client certificate refused ({reason})" in body["error_description"]

    status, body = bogus_code(cards, idp, None, good)  # the mTLS origin, no certificate
    assert (status, body["error"]) == (401, "invalid_client")
    assert "present your client certificate" in body["error_description"]
    answer = requests.post(idp.issuer + PATHS["token_endpoint"], verify=idp.ca, timeout=10,
                           data={"client_id": good, "grant_type": "authorization_code",
                                 "code": "x"})  # the IdP origin asks for no certificate
    assert answer.status_code == 401 and idp.mtls in answer.json()["error_description"]


def test_self_signed_tls_client_auth_registered_key_and_another(idp, cards, orgs):
    client = idp.rp(auth_method="self_signed_tls_client_auth",
                    jwks=orgs.self_signed.jwks()).client_id
    assert bogus_code(cards, idp, orgs.self_signed, client)[1]["error"] == "invalid_grant"
    status, body = bogus_code(cards, idp, orgs.self_other, client)
    assert (status, body["error"]) == (401, "invalid_client")
    assert "not one of the client's registered keys" in body["error_description"]


# --- certificate-bound tokens ----------------------------------------------------------

def test_bound_access_token_at_userinfo_and_introspection(idp, cards, orgs, browser,
                                                          demo_card):
    rp = idp.rp(auth_method="tls_client_auth", tls_client_auth_subject_dn=orgs.good.subject_dn,
                tls_client_certificate_bound_access_tokens=True)
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]
    status, tokens = token_request(cards, idp, orgs.good, rp.client_id,
                                   grant_type="authorization_code", code=code,
                                   redirect_uri=rp.redirect_uri, code_verifier=rp.verifier)
    assert status == 200, tokens
    access = tokens["access_token"]
    claims = jws.decode(access, rp.jwks())
    assert claims["cnf"] == {"x5t#S256": thumbprint(orgs.good)}
    assert tokens["token_type"] == "Bearer"

    bearer = {"Authorization": f"Bearer {access}"}
    userinfo = PATHS["userinfo_endpoint"]
    refused = requests.get(idp.issuer + userinfo, headers=bearer, verify=idp.ca, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    status, body = curl(cards, None, idp.mtls + userinfo, headers=bearer)
    assert (status, body["error"]) == (401, "invalid_token")
    status, body = curl(cards, orgs.other, idp.mtls + userinfo, headers=bearer)
    assert (status, body["error"]) == (401, "invalid_token")
    assert "another client certificate" in body["error_description"]
    status, body = curl(cards, orgs.good, idp.mtls + userinfo, headers=bearer)
    assert status == 200 and body["SubjectNameID"] == demo_card.id_nat

    resource_server = idp.rp()
    found = resource_server.post("introspection_endpoint", {"token": access}).json()
    assert found["active"] and found["cnf"] == {"x5t#S256": thumbprint(orgs.good)}


def test_public_client_refresh_token_bound_to_its_certificate(idp, cards, orgs, browser,
                                                              demo_card):
    rp = idp.rp(auth_method="none", tls_client_certificate_bound_access_tokens=True)
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]
    status, body = token_request(cards, idp, None, rp.client_id,
                                 grant_type="authorization_code", code=code,
                                 redirect_uri=rp.redirect_uri, code_verifier=rp.verifier)
    assert (status, body["error"]) == (400, "invalid_request")  # bound: a certificate needed
    assert "mTLS" in body["error_description"]  # the refusal left the code unused:
    status, tokens = token_request(cards, idp, orgs.self_signed, rp.client_id,
                                   grant_type="authorization_code", code=code,
                                   redirect_uri=rp.redirect_uri, code_verifier=rp.verifier)
    assert status == 200, tokens
    refresh = tokens["refresh_token"]
    found = idp.rp().post("introspection_endpoint", {"token": refresh}).json()
    assert found["cnf"] == {"x5t#S256": thumbprint(orgs.self_signed)}

    status, body = token_request(cards, idp, orgs.self_other, rp.client_id,
                                 grant_type="refresh_token", refresh_token=refresh)
    assert (status, body["error"]) == (400, "invalid_grant")
    status, renewed = token_request(cards, idp, orgs.self_signed, rp.client_id,
                                    grant_type="refresh_token", refresh_token=refresh)
    assert status == 200, renewed
    assert jws.decode(renewed["access_token"], rp.jwks())["cnf"] == {
        "x5t#S256": thumbprint(orgs.self_signed)}


def test_unbound_client_unchanged_on_the_mtls_origin(idp, cards, orgs, browser, demo_card):
    """Drop-in: a client_secret_basic client gets unbound tokens, whatever certificate the
    connection carries."""
    rp = idp.rp()
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]
    basic = requests.Request(auth=(rp.client_id, rp.client_secret), url="https://x/",
                             method="POST").prepare().headers["Authorization"]
    status, tokens = curl(cards, orgs.good, idp.mtls + PATHS["token_endpoint"],
                          {"grant_type": "authorization_code", "code": code,
                           "redirect_uri": rp.redirect_uri, "code_verifier": rp.verifier},
                          headers={"Authorization": basic})
    assert status == 200, tokens
    assert "cnf" not in jws.decode(tokens["access_token"], rp.jwks())
    assert rp.userinfo(tokens["access_token"]).status_code == 200


def test_ciba_over_mtls(idp, cards, orgs):
    """A CIBA client authenticates with its certificate at the CIBA alias and polls the
    token alias (the professional has no phone here: a decoy request, always pending)."""
    client = idp.rp(auth_method="tls_client_auth", tls_client_auth_subject_dn=orgs.good.subject_dn,
                    backchannel_token_delivery_mode="poll",
                    tls_client_certificate_bound_access_tokens=True).client_id
    status, asked = curl(cards, orgs.good, idp.mtls + PATHS["backchannel_authentication_endpoint"],
                         {"client_id": client, "scope": "openid scope_all",
                          "login_hint": "899700245667", "binding_message": "42"})
    assert status == 200 and set(asked) == {"auth_req_id", "expires_in", "interval"}, asked
    status, body = token_request(cards, idp, orgs.good, client,
                                 grant_type="urn:openid:params:grant-type:ciba",
                                 auth_req_id=asked["auth_req_id"])
    assert (status, body["error"]) == (400, "authorization_pending"), body
    status, body = curl(cards, orgs.other, idp.mtls + PATHS["backchannel_authentication_endpoint"],
                        {"client_id": client, "scope": "openid", "login_hint": "899700245667",
                         "binding_message": "42"})
    assert (status, body["error"]) == (401, "invalid_client")


# --- discovery ---------------------------------------------------------------------------

def test_discovery_advertises_the_mtls_aliases_that_answer(idp, cards, orgs):
    meta = requests.get(idp.issuer + "/.well-known/openid-configuration", verify=idp.ca,
                        timeout=10).json()
    assert meta["tls_client_certificate_bound_access_tokens"] is True
    aliases = meta["mtls_endpoint_aliases"]
    assert set(aliases) == {"token_endpoint", "introspection_endpoint", "revocation_endpoint",
                            "userinfo_endpoint", "backchannel_authentication_endpoint",
                            "pushed_authorization_request_endpoint"}
    for name, url in aliases.items():
        assert url == idp.mtls + PATHS[name]
    for field in ("token_endpoint_auth_methods_supported",
                  "introspection_endpoint_auth_methods_supported",
                  "revocation_endpoint_auth_methods_supported"):
        assert {"tls_client_auth", "self_signed_tls_client_auth"} <= set(meta[field])
    client = idp.rp(auth_method="tls_client_auth",
                    tls_client_auth_subject_dn=orgs.good.subject_dn).client_id
    status, body = curl(cards, orgs.good, aliases["introspection_endpoint"],
                        {"client_id": client, "token": "nothing"})
    assert (status, body) == (200, {"active": False})
    status, _ = curl(cards, orgs.good, idp.mtls + "/.well-known/openid-configuration")
    assert status == 404  # the mTLS origin serves the aliases only
    ready = requests.get(idp.ops_url + "/readyz", timeout=10).json()
    assert ready["checks"]["org_crl"] == {"ok": True, "stale": [], "loaded": 1}


def test_no_mtls_origin_advertises_no_mtls(keys_dir, tmp_path):
    app = create_app(base_settings(keys_dir, f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    with app.test_request_context():
        from psc_idp.oidc.discovery import metadata

        meta = metadata()
    assert "mtls_endpoint_aliases" not in meta
    assert "tls_client_certificate_bound_access_tokens" not in meta
    assert not {"tls_client_auth", "self_signed_tls_client_auth"} & set(
        meta["token_endpoint_auth_methods_supported"])


# --- behind nginx ------------------------------------------------------------------------

def test_behind_nginx_the_certificate_is_forwarded_as_for_cards(keys_dir, database_url, cards,
                                                                orgs, tmp_path):
    from .plugins.nginx import behind_nginx

    settings = mtls_settings(cards.pki)
    del settings["mtls_listen"]  # nginx's mTLS server block instead
    with behind_nginx(keys_dir, database_url, cards, tmp_path, **settings) as live:
        mtls_url = live.app.extensions["psc_idp"].settings.mtls_url
        live.mtls = mtls_url + urlsplit(live.issuer).path
        client = live.rp(auth_method="tls_client_auth",
                         tls_client_auth_subject_dn=orgs.good.subject_dn).client_id
        status, body = bogus_code(cards, live, orgs.good, client)
        assert (status, body["error"]) == (400, "invalid_grant"), body
        status, body = bogus_code(cards, live, orgs.other, client)
        assert (status, body["error"]) == (401, "invalid_client")
        status, body = bogus_code(cards, live, orgs.revoked, live.rp(
            auth_method="tls_client_auth",
            tls_client_auth_subject_dn=orgs.revoked.subject_dn).client_id)
        assert (status, body["error"]) == (401, "invalid_client")
        assert "(revoked)" in body["error_description"]
        # the IdP origin never forwards a certificate, not even one the client names
        forged = requests.post(live.issuer + PATHS["token_endpoint"], verify=live.ca,
                               timeout=10, headers={"X-SSL-Client-Cert": "forged"},
                               data={"client_id": client, "grant_type": "authorization_code",
                                     "code": "x"})
        assert forged.status_code == 401
        assert "present your client certificate" in forged.json()["error_description"]
        status, _ = curl(cards, orgs.good, mtls_url + "/admin/console/")
        assert status == 404


# --- registration ------------------------------------------------------------------------

@pytest.fixture
def app(keys_dir, sqlite_template, tmp_path):
    import shutil

    path = tmp_path / "idp.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_settings(keys_dir, f"sqlite:///{path}",
                                   mtls_url="https://mtls.example"))
    yield app
    with app.app_context():
        from psc_idp.extensions import db

        db.engine.dispose()


def register(app, **metadata):
    from psc_idp.clients import create_client, describe

    with app.app_context():
        return describe(create_client(name="rp", redirect_uris=["https://rp.example/cb"],
                                      **metadata)[0])


def test_registration_of_mtls_clients(app, orgs):
    from psc_idp.clients import RegistrationError

    described = register(app, auth_method="tls_client_auth",
                         tls_client_auth_subject_dn="cn=app, OU=1750000001, o=X, c=FR",
                         tls_client_certificate_bound_access_tokens=True)
    assert described["tls_client_auth_subject_dn"] == "CN=app,OU=1750000001,O=X,C=FR"
    assert described["tls_client_certificate_bound_access_tokens"] is True
    with app.app_context():
        from psc_idp.admin.console import protocol_options
        from psc_idp.clients import find

        assert protocol_options(find(described["client_id"])) == ["mTLS"]  # the console
    assert register(app)["tls_client_certificate_bound_access_tokens"] is False  # drop-in
    assert register(app, auth_method="self_signed_tls_client_auth",
                    jwks=orgs.self_signed.jwks())["jwks"]["keys"][0]["x5c"]
    refused = {
        "tls_client_auth_subject_dn": {"auth_method": "tls_client_auth"},
        "tls_client_auth_san_dns": {"auth_method": "tls_client_auth",
                                    "tls_client_auth_subject_dn": "CN=a",
                                    "tls_client_auth_san_dns": "a.example"},
        "jwks": {"auth_method": "self_signed_tls_client_auth"},
    }
    for field, metadata in refused.items():
        with pytest.raises(RegistrationError) as refusal:
            register(app, **metadata)
        assert refusal.value.field == field, refusal.value
    with pytest.raises(RegistrationError, match="RFC 4514"):
        register(app, auth_method="tls_client_auth", tls_client_auth_subject_dn="not a DN")


def test_no_mtls_origin_refuses_mtls_clients(keys_dir, sqlite_template, tmp_path):
    import shutil

    from psc_idp.clients import RegistrationError, create_client

    path = tmp_path / "idp.sqlite3"
    shutil.copy(sqlite_template, path)
    app = create_app(base_settings(keys_dir, f"sqlite:///{path}"))
    with app.app_context(), pytest.raises(RegistrationError, match="no mTLS origin"):
        create_client(name="rp", redirect_uris=["https://rp.example/cb"],
                      tls_client_certificate_bound_access_tokens=True)


@pytest.mark.parametrize("changes", [{"mtls_url": "http://mtls.example"},
                                     {"mtls_url": "https://mtls.example/"},
                                     {"mtls_url": "https://mtls.example/auth"},
                                     {"mtls_listen": "127.0.0.1:5447"}])
def test_mtls_settings_are_checked(changes):
    from psc_idp import settings

    with pytest.raises(settings.SettingsError, match="mtls_url"):
        settings.load({"secret_key": "s" * 32, **changes}, environ={})


def test_clients_cli_registers_the_certificate_and_the_binding(app, orgs):
    import json as json_module

    from psc_idp.cli import main

    def run(*args):
        result = app.test_cli_runner().invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    created = json_module.loads(run(
        "clients", "create", "--name", "org app", "--redirect-uri", "https://rp.example/cb",
        "--auth-method", "tls_client_auth", "--tls-subject-dn", orgs.good.subject_dn,
        "--mtls-bound", "--json"))
    assert created["tls_client_auth_subject_dn"] == orgs.good.subject_dn
    assert created["tls_client_certificate_bound_access_tokens"] is True
    assert created["client_secret"] is None
    updated = json_module.loads(run("clients", "update", created["client_id"],
                                    "--tls-san", "dns:api.example.org", "--no-mtls-bound",
                                    "--json"))
    assert "tls_client_auth_subject_dn" not in updated  # one subject field: the SAN now
    assert updated["tls_client_auth_san_dns"] == "api.example.org"
    assert updated["tls_client_certificate_bound_access_tokens"] is False


# --- in process: the FAPI 2.0 switch with mTLS ---------------------------------------------

def test_fapi2_client_with_mtls_gets_certificate_bound_tokens(keys_dir, sqlite_template,
                                                              tmp_path, orgs):
    """FAPI 2.0 §5.3.2.1: tls_client_auth is an accepted client authentication, and
    certificate-bound tokens are sender-constrained (no DPoP proof needed); the same client
    without the binding is refused. In process: the certificate as the listener hands it."""
    import shutil

    from psc_idp.clients import update_client
    from psc_idp.oidc.models import Client

    from .test_dpop import Transcript
    from .test_round_trips import BASE_URL, ISSUER_PATH, REDIRECT

    path = tmp_path / "idp.sqlite3"
    shutil.copy(sqlite_template, path)
    pki = orgs.pki
    app = create_app(base_settings(keys_dir, f"sqlite:///{path}", mtls_url="https://mtls.example",
                                   org_trust_anchors=[str(pki.trust_anchor)],
                                   org_intermediates=[str(pki.org_ca)],
                                   org_crls=[str(pki.org_crl)]))
    from psc_idp.clients import create_client

    with app.app_context():
        client_id = create_client(name="fapi", redirect_uris=[REDIRECT],
                                  auth_method="tls_client_auth",
                                  tls_client_auth_subject_dn=orgs.good.subject_dn,
                                  fapi2_security_profile=True)[0].client_id
    transcript = Transcript(app, client_id, None)
    certificate = Path(orgs.good.certificate).read_text()

    def exchange():
        return transcript.http.post(
            ISSUER_PATH + PATHS["token_endpoint"], base_url=BASE_URL,
            environ_overrides={"SSL_CLIENT_CERT": certificate},
            data={"grant_type": "authorization_code", "code": transcript.code(),
                  "redirect_uri": REDIRECT, "code_verifier": transcript.verifier,
                  "client_id": client_id})

    refused = exchange()
    assert refused.status_code == 400, refused.get_json()
    assert "sender-constrained" in refused.get_json()["error_description"]
    with app.app_context():
        from psc_idp.extensions import db

        update_client(db.session.get(Client, client_id),
                      {"tls_client_certificate_bound_access_tokens": True}, actor="test")
    answer = exchange()
    assert answer.status_code == 200, answer.get_json()
    with app.app_context():
        claims = jws.decode(answer.get_json()["access_token"],
                            app.extensions["psc_idp"].keys.key_set())
    assert claims["cnf"] == {"x5t#S256": thumbprint(orgs.good)}
    with app.app_context():
        from psc_idp.extensions import db

        db.engine.dispose()
