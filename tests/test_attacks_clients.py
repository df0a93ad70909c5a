"""Attacks on the client lifecycle and on its three doors (CLI, admin API, RFC 7591/7592),
each reproduced against a live psc-idp (real HTTPS, SQLite and PostgreSQL) and expected to
fail cleanly: a disabled or deleted client's tokens are refused, a client id is never
reused, only public asymmetric keys are registered, an initial access token registers no
more clients than it allows even under concurrent requests, and no input answers a 500."""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest
import requests
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from psc_idp.admin import models as keys

from .support import RelyingParty, code_from

ADMIN = "/admin/api/v1"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CB = "https://rp.example/cb"


pytestmark = pytest.mark.usefixtures("no_server_errors")


class Doors:
    """The admin API and RFC 7591/7592 of the live server, as scripts and vendors use them."""

    def __init__(self, idp):
        self.idp = idp
        with idp.app.app_context():
            _, self.admin_token = keys.issue("admin", "attacks", 3600)
        self.admin_url = idp.issuer.split("/auth/")[0] + ADMIN
        self.registration_url = idp.issuer + "/clients-registrations/openid-connect"

    def _call(self, method, url, token, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return requests.request(method, url, headers=headers, verify=self.idp.ca, timeout=30,
                                **kwargs)

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return self._call(method, self.admin_url + path, self.admin_token, **kwargs)

    def iat(self, uses: int | None = 1, **policy) -> str:
        with self.idp.app.app_context():
            _, token = keys.issue("registration", "vendor", 3600, uses=uses, policy=policy)
        return token

    def register(self, metadata, iat: str | None = None, **kwargs) -> requests.Response:
        return self._call("POST", self.registration_url, iat or self.iat(), json=metadata,
                          **kwargs)

    def manage(self, method: str, registered: dict, **kwargs) -> requests.Response:
        return self._call(method, registered["registration_client_uri"],
                          registered["registration_access_token"], **kwargs)


@pytest.fixture
def doors(idp):
    return Doors(idp)


def _tokens(idp, browser, card, rp: RelyingParty) -> dict:
    response = rp.exchange(code_from(browser.with_card(card, rp.authorization_url()))["code"])
    assert response.status_code == 200, response.text
    return response.json()


def _introspect(idp, token: str) -> dict:
    return idp.rp().post("introspection_endpoint", {"token": token}).json()


# --- a client disabled or deleted: its tokens ------------------------------------------------

def test_disabling_refuses_the_clients_tokens_at_once_and_for_good(idp, browser, demo_card,
                                                                   doors):
    rp = idp.rp()
    tokens = _tokens(idp, browser, demo_card, rp)
    assert rp.userinfo(tokens["access_token"]).status_code == 200
    assert doors.admin("POST", f"/clients/{rp.client_id}/disable").status_code == 200
    assert rp.userinfo(tokens["access_token"]).status_code == 401
    assert _introspect(idp, tokens["access_token"]) == {"active": False}
    assert _introspect(idp, tokens["refresh_token"]) == {"active": False}
    assert rp.refresh(tokens["refresh_token"]).json()["error"] == "invalid_client"
    # enabling it again does not bring the revoked tokens back
    assert doors.admin("POST", f"/clients/{rp.client_id}/enable").status_code == 200
    assert rp.userinfo(tokens["access_token"]).status_code == 401
    assert rp.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    code = code_from(browser.get(rp.authorization_url()))["code"]  # SSO: new tokens work
    assert rp.userinfo(rp.exchange(code).json()["access_token"]).status_code == 200


def test_a_code_issued_before_disabling_is_void(idp, browser, demo_card, doors):
    rp = idp.rp()
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]
    doors.admin("POST", f"/clients/{rp.client_id}/disable")
    doors.admin("POST", f"/clients/{rp.client_id}/enable")
    assert rp.exchange(code).json()["error"] == "invalid_grant"


def test_deleting_revokes_the_clients_tokens_userinfo_never_500(idp, browser, demo_card,
                                                                doors):
    rp = idp.rp()
    tokens = _tokens(idp, browser, demo_card, rp)
    assert doors.admin("DELETE", f"/clients/{rp.client_id}").status_code == 204
    answer = rp.userinfo(tokens["access_token"])
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
    assert _introspect(idp, tokens["access_token"]) == {"active": False}
    assert rp.refresh(tokens["refresh_token"]).json()["error"] == "invalid_client"
    with idp.app.app_context():
        from psc_idp.extensions import db
        from psc_idp.oidc.models import Token

        rows = db.session.scalars(db.select(Token).where(Token.client_id == rp.client_id))
        assert all(row.revoked_at for row in rows)


def test_a_client_id_is_never_reused(idp, browser, demo_card, doors):
    """A client re-created under a deleted client's id would inherit its tokens."""
    created = doors.admin("POST", "/clients", json={
        "client_id": "cabinet-reuse", "client_name": "Cabinet", "redirect_uris": [CB]}).json()
    rp = RelyingParty(idp.issuer, "cabinet-reuse", created["client_secret"], CB, idp.ca)
    tokens = _tokens(idp, browser, demo_card, rp)
    assert doors.admin("DELETE", "/clients/cabinet-reuse").status_code == 204
    again = doors.admin("POST", "/clients", json={
        "client_id": "cabinet-reuse", "client_name": "Cabinet", "redirect_uris": [CB]})
    assert again.status_code == 400 and "never reused" in again.json()["error_description"]
    runner = idp.app.test_cli_runner()
    from psc_idp.cli import main

    result = runner.invoke(main, ["clients", "create", "--name", "Cabinet", "--client-id",
                                  "cabinet-reuse", "--redirect-uri", CB])
    assert result.exit_code == 1 and "never reused" in result.output
    assert rp.refresh(tokens["refresh_token"]).json()["error"] == "invalid_client"
    assert rp.userinfo(tokens["access_token"]).status_code == 401


# --- client keys -------------------------------------------------------------------------------

def _oct_jwks() -> dict:
    return {"keys": [{"kty": "oct", "k": OctKey.generate_key(256).as_dict(private=True)["k"],
                      "kid": "shared", "alg": "HS256"}]}


def _assertion(client_id: str, audience: str, key, alg: str) -> str:
    issued = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": issued,
              "exp": issued + 60, "jti": secrets.token_urlsafe(16)}
    return joserfc_jwt.encode({"alg": alg}, claims, key)


def test_symmetric_keys_are_refused_at_every_door(idp, doors, client_key):
    oct_jwks = _oct_jwks()
    secret_k = oct_jwks["keys"][0]["k"]
    metadata = {"client_name": "hs", "redirect_uris": [CB],
                "token_endpoint_auth_method": "private_key_jwt", "jwks": oct_jwks}
    answers = [doors.admin("POST", "/clients", json=metadata), doors.register(metadata)]
    rp = idp.rp(auth_method="private_key_jwt", jwks=client_key.jwks)
    answers.append(doors.admin("PATCH", f"/clients/{rp.client_id}", json={"jwks": oct_jwks}))
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_client_metadata"
        assert "oct" in answer.json()["error_description"] and secret_k not in answer.text


def test_a_stored_symmetric_key_never_authenticates_nor_shows(idp, doors, client_key):
    """A row written before the rules (the migration cleans them; this one is forced)."""
    registered = doors.register({"client_name": "legacy", "redirect_uris": [CB],
                                 "token_endpoint_auth_method": "private_key_jwt",
                                 "jwks": client_key.jwks}).json()
    client_id, oct_jwks = registered["client_id"], _oct_jwks()
    with idp.app.app_context():
        from psc_idp.clients import find
        from psc_idp.extensions import db

        find(client_id).jwks = oct_jwks
        db.session.commit()
    rp = RelyingParty(idp.issuer, client_id, None, CB, idp.ca)
    hs256 = _assertion(client_id, rp.url("token_endpoint"),
                       OctKey.import_key(oct_jwks["keys"][0]), "HS256")
    answer = rp.post("introspection_endpoint", {"token": "x", "client_assertion": hs256,
                                                "client_assertion_type": ASSERTION_TYPE},
                     auth="none")
    assert answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client"
    secret_k = oct_jwks["keys"][0]["k"]
    shown = [doors.admin("GET", f"/clients/{client_id}"), doors.manage("GET", registered)]
    for answer in shown:
        assert answer.status_code == 200 and secret_k not in answer.text
        assert answer.json()["jwks"] == {"keys": []}


@pytest.mark.parametrize("key,reason", [
    ({"kty": "RSA", "n": "sXch", "e": "AQAB"}, "2048"),
    ({**RSAKey.generate_key(2048).as_dict(private=False), "use": "enc"}, "use"),
    ({**ECKey.generate_key("P-256").as_dict(private=False), "alg": "RS256"}, "alg"),
    ({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "EC"),
    ({"kty": "EC", "crv": "secp256k1", "x": "AAAA", "y": "AAAA"}, "crv"),
    (RSAKey.generate_key(2048).as_dict(private=True), "private"),
])
def test_weak_or_private_keys_are_refused(doors, key, reason):
    answer = doors.register({"client_name": "k", "redirect_uris": [CB], "jwks": {"keys": [key]},
                             "token_endpoint_auth_method": "private_key_jwt"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client_metadata"
    assert reason in answer.json()["error_description"]


def test_an_ec_p256_key_authenticates_with_es256(idp, browser, demo_card):
    private = ECKey.generate_key("P-256")
    jwks = {"keys": [{**private.as_dict(private=False), "kid": "ec-1", "alg": "ES256"}]}
    rp = idp.rp(auth_method="private_key_jwt", jwks=jwks)
    code = code_from(browser.with_card(demo_card, rp.authorization_url()))["code"]
    assertion = _assertion(rp.client_id, rp.url("token_endpoint"), private, "ES256")
    answer = rp.exchange(code, auth="none", data_extra={
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
    assert answer.status_code == 200, answer.text


# --- initial access tokens under concurrent registrations -----------------------------------

@pytest.mark.parametrize("uses", [1, 3])
def test_an_initial_access_token_registers_no_more_than_its_uses(doors, uses):
    iat, barrier, answers = doors.iat(uses=uses), threading.Barrier(8), []

    def register(index: int):
        barrier.wait()
        answers.append(doors.register({"client_name": f"race {index}",
                                       "redirect_uris": [CB]}, iat=iat).status_code)
    threads = [threading.Thread(target=register, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201] * uses + [401] * (8 - uses)


def test_a_refused_registration_does_not_use_up_the_token(doors):
    iat = doors.iat(uses=1)
    assert doors.register({"redirect_uris": ["http://rp.example/cb"]}, iat=iat).status_code == 400
    assert doors.register({"redirect_uris": [CB]}, iat=iat).status_code == 201
    assert doors.register({"redirect_uris": [CB]}, iat=iat).status_code == 401


# --- inputs that answered 500 ------------------------------------------------------------------

NESTED = b"[" * 20000 + b"]" * 20000
BAD_BODIES = {
    "port 99999": {"redirect_uris": ["https://rp.example:99999/cb"]},
    "jwks keys not a list": {"jwks": {"keys": 5}},
    "jwks key not an object": {"jwks": {"keys": [[]]}},
    "jwks n not a string": {"jwks": {"keys": [{"kty": "RSA", "n": 5, "e": "AQAB"}]}},
    "jwks string": {"jwks": "keys"},
    "grant_types [{}]": {"grant_types": [{}]},
    "compat [[]]": {"compat": [[]]},
    "bracketed host": {"redirect_uris": ["https://[zz]/cb"]},
    "NUL in name": {"client_name": "a\x00b"},
    "lone surrogate": {"client_name": "\ud800"},
    "float grace": {"refresh_reuse_grace": 1.5},
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bodies_that_answered_500_are_400(idp, doors, case):
    body = {"client_name": "x", "redirect_uris": [CB], **BAD_BODIES[case]}
    rp = idp.rp()
    for answer in (doors.admin("POST", "/clients", json=body), doors.register(body),
                   doors.admin("PATCH", f"/clients/{rp.client_id}", json=BAD_BODIES[case])):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")


def test_deeply_nested_json_is_400(idp, doors):
    rp, headers = idp.rp(), {"Content-Type": "application/json"}
    registered = doors.register({"redirect_uris": [CB]}).json()
    for answer in (doors.admin("POST", "/clients", data=NESTED, headers=headers),
                   doors.admin("PATCH", f"/clients/{rp.client_id}", data=NESTED,
                               headers=headers),
                   doors.admin("POST", f"/clients/{rp.client_id}/secret", data=NESTED,
                               headers=headers),
                   doors.register(None, data=NESTED, headers=headers),
                   doors.manage("PUT", registered, data=NESTED, headers=headers)):
        assert answer.status_code == 400, answer.text
        assert "deeper" in answer.json()["error_description"]


@pytest.mark.parametrize("grace", [10**30, -1, 1.5, "60", True, 10**7])
def test_huge_or_malformed_grace_is_400_and_rotates_nothing(idp, doors, grace):
    rp = idp.rp()
    answer = doors.admin("POST", f"/clients/{rp.client_id}/secret",
                         json={"grace_seconds": grace})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert rp.post("introspection_endpoint", {"token": "x"}).status_code == 200


def test_unknown_fields_are_400(idp, doors):
    """``{"grace": 60}`` used to rotate with the default one-day grace."""
    rp = idp.rp()
    answer = doors.admin("POST", f"/clients/{rp.client_id}/secret", json={"grace": 60})
    assert answer.status_code == 400 and "grace" in answer.json()["error_description"]
    got = doors.admin("GET", f"/clients/{rp.client_id}").json()
    assert got["secret_rotation_ends_at"] is None  # nothing rotated
    assert rp.post("introspection_endpoint", {"token": "x"}).status_code == 200
    for answer in (doors.admin("PATCH", f"/clients/{rp.client_id}", json={"colour": "red"}),
                   doors.register({"redirect_uris": [CB], "colour": "red"})):
        assert answer.status_code == 400 and "colour" in answer.json()["error_description"]


# --- redirect URIs ---------------------------------------------------------------------------

@pytest.mark.parametrize("uri", [
    "https://rp.example/c\tb", "https://rp.example/c b", "https://rp.example/cb\x7f",
    "https://rp.example/cb#", "https://@rp.example/cb", "https://*.rp.example/cb",
    "https://rp.example/*", "https://rp.example:0/cb", "https://rp.example/a/../cb",
    "https://rp.example\\@evil.example/cb",
])
def test_suspicious_redirect_uris_are_refused(doors, uri):
    for answer in (doors.register({"redirect_uris": [uri]}),
                   doors.admin("POST", "/clients", json={"client_name": "u",
                                                         "redirect_uris": [uri]})):
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_redirect_uri"


def test_redirect_uris_are_stored_normalised_and_matched_exactly(idp, browser, doors):
    answer = doors.register({"redirect_uris": ["HTTPS://RP.Example:443/cb?app=1"],
                             "post_logout_redirect_uris": ["https://RP.example:8443"]})
    registered = answer.json()
    assert registered["redirect_uris"] == ["https://rp.example/cb?app=1"]
    assert registered["post_logout_redirect_uris"] == ["https://rp.example:8443/"]
    rp = RelyingParty(idp.issuer, registered["client_id"], registered["client_secret"],
                      "https://rp.example/cb?app=1", idp.ca)
    assert browser.get(rp.authorization_url()).status_code == 302  # on to the login
    original = browser.get(rp.authorization_url(redirect_uri="HTTPS://RP.Example:443/cb?app=1"))
    assert original.status_code == 400 and "Location" not in original.headers


# --- RFC 7592 and ops policy -----------------------------------------------------------------

def test_a_put_of_the_servers_own_answer_is_accepted(doors, client_key):
    registered = doors.register({"client_name": "Logiciel", "redirect_uris": [CB],
                                 "token_endpoint_auth_method": "private_key_jwt",
                                 "jwks": client_key.jwks, "contacts": ["a@b.example"]}).json()
    read = doors.manage("GET", registered).json()
    replaced = doors.manage("PUT", registered, json=read)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == read
    again = doors.manage("PUT", registered, json=registered)  # the registration answer too
    assert again.status_code == 200, again.text
    for field, value in (("client_id_issued_at", 1), ("enabled", False),
                         ("registered_by", "cli"), ("registration_access_token", "forged"),
                         ("client_secret", "chosen"), ("client_id", "someone-else")):
        answer = doors.manage("PUT", registered, json={**read, field: value})
        assert answer.status_code == 400 and field in answer.json()["error_description"]


def test_a_vendor_cannot_loosen_the_initial_access_tokens_policy(doors):
    iat = doors.iat(uses=None, require_pkce=True, refresh_reuse_grace=0)
    looser = [{"require_pkce": False}, {"refresh_reuse_grace": 5},
              {"refresh_reuse_grace": None}]
    for policy in looser:
        answer = doors.register({"redirect_uris": [CB], **policy}, iat=iat)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_client_metadata"
        assert next(iter(policy)) in answer.json()["error_description"]
    registered = doors.register({"redirect_uris": [CB], "strict_client_auth": True},
                                iat=iat).json()
    assert registered["require_pkce"] is True and registered["refresh_reuse_grace"] == 0
    assert registered["strict_client_auth"] is True  # tightening is welcome
    read = doors.manage("GET", registered).json()
    for policy in ({"require_pkce": False}, {"strict_client_auth": False},
                   {"refresh_reuse_grace": 3}):
        assert doors.manage("PUT", registered, json={**read, **policy}).status_code == 400
    assert doors.manage("PUT", registered, json={**read, "access_token_format": "rfc9068"}
                        ).status_code == 200
    # ops may loosen it; the vendor may then repeat ops' value
    client_id = registered["client_id"]
    assert doors.admin("PATCH", f"/clients/{client_id}", json={"require_pkce": False}
                       ).json()["require_pkce"] is False
    read = doors.manage("GET", registered).json()
    assert doors.manage("PUT", registered, json=read).json()["require_pkce"] is False


def test_a_vendor_cannot_loosen_the_servers_pkce_setting(keys_dir, database_url, cards,
                                                          smtp_server, tmp_path):
    from .plugins.idp import running_idp

    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     pkce_required_for_confidential=True) as live:
        doors = Doors(live)
        answer = doors.register({"redirect_uris": [CB], "require_pkce": False})
        assert answer.status_code == 400 and "require_pkce" in answer.json()[
            "error_description"]
        assert doors.register({"redirect_uris": [CB]}).json()["require_pkce"] is True


def test_cli_initial_access_token_with_policy(idp, doors):
    from psc_idp.cli import main

    result = idp.app.test_cli_runner().invoke(main, ["clients", "issue-iat", "--require-pkce",
                                                     "--access-token-format", "rfc9068"])
    assert result.exit_code == 0 and "require_pkce=True" in result.output
    iat = result.output.split("initial_access_token: ")[1].split()[0]
    answer = doors.register({"redirect_uris": [CB], "access_token_format": "psc"}, iat=iat)
    assert answer.status_code == 400
    registered = doors.register({"redirect_uris": [CB]}, iat=iat).json()
    assert (registered["require_pkce"], registered["access_token_format"]) == (True, "rfc9068")
    assert json.loads(json.dumps(registered))["client_secret"]


def test_the_migration_removes_stored_symmetric_and_private_keys(keys_dir, database_url):
    """Keys stored before these rules: the upgrade keeps only public members of public
    asymmetric keys."""
    from alembic import command

    from psc_idp import create_app
    from psc_idp.extensions import db
    from psc_idp.migrate import alembic_config

    from .plugins.idp import base_settings

    app = create_app(base_settings(keys_dir, database_url))
    public = RSAKey.generate_key(2048).as_dict(private=False)
    stored = {"keys": [_oct_jwks()["keys"][0], RSAKey.generate_key(2048).as_dict(private=True),
                       {**public, "x-note": "kept out"}]}
    with app.app_context():
        command.downgrade(alembic_config(), "e8c4b2a6d0f1")
        db.session.execute(db.text(
            "INSERT INTO oauth_client (client_id, name, token_endpoint_auth_method, jwks, "
            "redirect_uris, post_logout_redirect_uris, scope, grant_types, "
            "id_token_signed_response_alg, require_pkce, strict_client_auth, "
            "access_token_format, compat, enabled, created_at, contacts, registered_by) "
            "VALUES ('legacy', 'legacy', 'private_key_jwt', :jwks, '[]', '[]', 'openid', "
            "'[]', 'RS256', false, false, 'psc', '[]', true, 0, '[]', 'cli')"),
            {"jwks": json.dumps(stored)})
        db.session.commit()
        command.upgrade(alembic_config(), "head")
        from psc_idp.clients import find

        assert find("legacy").jwks == {"keys": [public]}
        db.session.remove()
        db.engine.dispose()
