"""DPoP (RFC 9449) as protocol transcripts over in-process requests (Flask's test client,
both databases): proofs at the token endpoint (nonce, replay, htm/htu, keys), DPoP-bound
access and refresh tokens at userinfo and introspection, ``dpop_jkt`` at the
authorization endpoint, and the drop-in rule: a client that sends no proof works as
before, one registered with ``dpop_bound_access_tokens`` must send one."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from psc_idp import create_app
from psc_idp.oidc.consts import PATHS

from .plugins.idp import base_settings
from .support import s256
from .test_round_trips import BASE_URL, ID_NAT, ISSUER_PATH, REDIRECT

ISSUER = BASE_URL + ISSUER_PATH
TOKEN, USERINFO = ISSUER + PATHS["token_endpoint"], ISSUER + PATHS["userinfo_endpoint"]


def proof(key, htu: str = TOKEN, htm: str = "POST", *, access_token: str | None = None,
          nonce: str | None = None, signing_alg: str | None = None, **changes) -> str:
    """A DPoP proof (RFC 9449 §4.2) signed with ``key``; ``changes``: claims or header
    members to override (None removes one)."""
    alg = signing_alg or {ECKey: "ES256", RSAKey: "PS256", OctKey: "HS256"}[type(key)]
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    claims = {"jti": secrets.token_urlsafe(12), "htm": htm, "htu": htu, "iat": int(time.time())}
    if access_token is not None:
        claims["ath"] = base64.urlsafe_b64encode(
            hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()
    if nonce is not None:
        claims["nonce"] = nonce
    for name, value in changes.items():
        target = header if name in ("typ", "alg", "jwk") else claims
        target.pop(name, None) if value is None else target.__setitem__(name, value)
    return jws.serialize_compact(header, json.dumps(claims), key, algorithms=[alg])


class Transcript:
    """The app, one client, and the requests of a DPoP client."""

    def __init__(self, app, client_id: str, secret: str | None):
        self.app, self.client_id, self.secret = app, client_id, secret
        self.http = app.test_client()
        self.verifier = secrets.token_urlsafe(48)

    def code(self, dpop_jkt: str | None = None) -> str:
        from psc_idp.extensions import db
        from psc_idp.oidc.models import AuthorizationCode, LoginSession, digest, now

        code, sid = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self.app.app_context():
            db.session.add(LoginSession(sid=sid, id_nat=ID_NAT, auth_time=now(), acr="eidas1",
                                        amr=["sc", "pin", "mfa"], auth_mode="CARD",
                                        expires_at=now() + 3600))
            db.session.add(AuthorizationCode(
                code_hash=digest(code), grant_id=secrets.token_urlsafe(24),
                client_id=self.client_id, redirect_uri=REDIRECT, scope="openid scope_all",
                code_challenge=s256(self.verifier), code_challenge_method="S256",
                id_nat=ID_NAT, sid=sid, auth_time=now(), acr="eidas1",
                amr=["sc", "pin", "mfa"], auth_mode="CARD", expires_at=now() + 60,
                dpop_jkt=dpop_jkt))
            db.session.commit()
        return code

    def token(self, data: dict, dpop: str | None = None):
        headers = {"DPoP": dpop} if dpop else {}
        if self.secret:
            basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        else:
            data = {**data, "client_id": self.client_id}
        return self.http.post(ISSUER_PATH + PATHS["token_endpoint"], base_url=BASE_URL,
                              headers=headers, data=data)

    def exchange(self, code: str, dpop: str | None = None):
        return self.token({"grant_type": "authorization_code", "code": code,
                           "redirect_uri": REDIRECT, "code_verifier": self.verifier}, dpop)

    def refresh(self, refresh_token: str, dpop: str | None = None):
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token},
                          dpop)

    def nonce(self) -> str:
        """The server's current nonce, as a client learns it: from a refused proof."""
        answer = self.exchange("no-such-code", proof(ECKey.generate_key("P-256")))
        assert answer.get_json()["error"] == "use_dpop_nonce", answer.get_json()
        return answer.headers["DPoP-Nonce"]

    def dpop_tokens(self, key, code: str | None = None, alg: str | None = None) -> dict:
        answer = self.exchange(code or self.code(), proof(key, nonce=self.nonce(),
                                                          signing_alg=alg))
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def userinfo(self, access_token: str, scheme: str = "DPoP", dpop: str | None = None):
        headers = {"Authorization": f"{scheme} {access_token}"}
        if dpop:
            headers["DPoP"] = dpop
        return self.http.get(ISSUER_PATH + PATHS["userinfo_endpoint"], base_url=BASE_URL,
                             headers=headers)

    def introspect(self, token: str) -> dict:
        from psc_idp.clients import create_client

        with self.app.app_context():
            client, secret = create_client(name="rs", redirect_uris=[REDIRECT])
            basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
        return self.http.post(ISSUER_PATH + PATHS["introspection_endpoint"],
                              base_url=BASE_URL, headers={"Authorization": f"Basic {basic}"},
                              data={"token": token}).get_json()


@pytest.fixture
def app(keys_dir, database_url):
    from psc_idp.extensions import db

    app = create_app(base_settings(keys_dir, database_url))
    yield app
    with app.app_context():
        db.engine.dispose()


def register(app, **metadata) -> Transcript:
    from psc_idp.clients import create_client

    with app.app_context():
        client, secret = create_client(name="dpop", redirect_uris=[REDIRECT], **metadata)
        return Transcript(app, client.client_id, secret)


@pytest.fixture
def rp(app) -> Transcript:
    return register(app)


@pytest.fixture
def key():
    return ECKey.generate_key("P-256")


def claims_of(jwt: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))


def test_a_valid_proof_gets_a_dpop_bound_token(rp, key):
    tokens = rp.dpop_tokens(key)
    assert tokens["token_type"] == "DPoP"
    assert claims_of(tokens["access_token"])["cnf"] == {"jkt": key.thumbprint()}
    answer = rp.userinfo(tokens["access_token"], dpop=proof(
        key, USERINFO, "GET", access_token=tokens["access_token"]))
    assert answer.status_code == 200 and answer.get_json()["SubjectNameID"] == ID_NAT
    answer = rp.introspect(tokens["access_token"])
    assert answer["active"] is True and answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.thumbprint()}


def test_rfc9068_tokens_are_bound_too(app, key):
    rp = register(app, access_token_format="rfc9068")
    tokens = rp.dpop_tokens(ECKey.generate_key("P-256"))
    assert "jkt" in claims_of(tokens["access_token"])["cnf"]


@pytest.mark.parametrize("alg", ["ES256", "ES384", "PS256", "RS256", "Ed25519"])
def test_every_advertised_algorithm_works(rp, alg):
    key = {"ES256": lambda: ECKey.generate_key("P-256"),
           "ES384": lambda: ECKey.generate_key("P-384"),
           "Ed25519": lambda: OKPKey.generate_key("Ed25519")}.get(
        alg, lambda: RSAKey.generate_key(2048))()
    tokens = rp.dpop_tokens(key, alg=alg)
    assert tokens["token_type"] == "DPoP"
    access = tokens["access_token"]
    assert rp.userinfo(access, dpop=proof(key, USERINFO, "GET", access_token=access,
                                          signing_alg=alg)).status_code == 200
    from psc_idp.oidc.dpop import ALGS
    assert set(ALGS) == {"ES256", "ES384", "PS256", "RS256", "Ed25519"}


def test_without_a_proof_nothing_changes(rp):
    """The drop-in rule: Bearer tokens, no cnf, no DPoP-Nonce."""
    answer = rp.exchange(rp.code())
    tokens = answer.get_json()
    assert tokens["token_type"] == "Bearer" and "cnf" not in claims_of(tokens["access_token"])
    assert "DPoP-Nonce" not in answer.headers
    assert rp.userinfo(tokens["access_token"], "Bearer").status_code == 200
    assert rp.introspect(tokens["access_token"])["token_type"] == "Bearer"


def test_a_proof_without_the_nonce_gets_use_dpop_nonce(rp, key):
    code = rp.code()
    answer = rp.exchange(code, proof(key))
    assert answer.status_code == 400 and answer.get_json()["error"] == "use_dpop_nonce"
    nonce = answer.headers["DPoP-Nonce"]
    retry = rp.exchange(code, proof(key, nonce=nonce))  # the code was left unused
    assert retry.status_code == 200 and retry.get_json()["token_type"] == "DPoP"
    assert retry.headers["DPoP-Nonce"] == nonce


def test_a_stale_nonce_gets_use_dpop_nonce(rp, key):
    answer = rp.exchange(rp.code(), proof(key, nonce="not-a-nonce-of-this-server"))
    assert answer.get_json()["error"] == "use_dpop_nonce" and answer.headers["DPoP-Nonce"]


def test_a_replayed_proof_is_refused(rp, key):
    sent = proof(key, nonce=rp.nonce())
    assert rp.exchange(rp.code(), sent).status_code == 200
    replay = rp.exchange(rp.code(), sent)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_dpop_proof"
    assert "already used" in replay.get_json()["error_description"]


@pytest.mark.parametrize("changes", [
    {"htu": ISSUER + PATHS["userinfo_endpoint"]},
    {"htu": "https://other.example" + ISSUER_PATH + PATHS["token_endpoint"]},
    {"htm": "GET"},
    {"iat": int(time.time()) - 3600},
    {"iat": int(time.time()) + 3600},
    {"jti": None},
    {"typ": "JWT"},
    {"typ": None},
], ids=["htu-other-endpoint", "htu-other-host", "htm", "iat-old", "iat-future", "no-jti",
        "typ-jwt", "no-typ"])
def test_a_wrong_proof_is_refused(rp, key, changes):
    answer = rp.exchange(rp.code(), proof(key, nonce=rp.nonce(), **changes))
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_dpop_proof"


def test_htu_ignores_query_fragment_case_and_default_port(rp, key):
    htu = "HTTPS://LOCALHOST:5443" + ISSUER_PATH + PATHS["token_endpoint"] + "?x=1#f"
    answer = rp.exchange(rp.code(), proof(key, htu, nonce=rp.nonce()))
    assert answer.status_code == 200, answer.get_json()


@pytest.mark.parametrize("tamper", ["private-key", "symmetric", "signature", "garbage",
                                    "two-proofs"])
def test_malformed_proofs_are_refused(rp, key, tamper):
    nonce = rp.nonce()
    sent = proof(key, nonce=nonce)
    if tamper == "private-key":
        sent = proof(key, nonce=nonce, jwk=key.as_dict(private=True))
    elif tamper == "symmetric":
        sent = proof(OctKey.generate_key(256), nonce=nonce)
    elif tamper == "signature":
        sent = sent[:-6] + ("AAAAAA" if not sent.endswith("AAAAAA") else "BBBBBB")
    elif tamper == "garbage":
        sent = "not.a.jwt"
    headers = [("DPoP", sent), ("DPoP", sent)] if tamper == "two-proofs" else [("DPoP", sent)]
    basic = base64.b64encode(f"{rp.client_id}:{rp.secret}".encode()).decode()
    answer = rp.http.post(ISSUER_PATH + PATHS["token_endpoint"], base_url=BASE_URL,
                          headers=[*headers, ("Authorization", f"Basic {basic}")],
                          data={"grant_type": "authorization_code", "code": rp.code(),
                                "redirect_uri": REDIRECT, "code_verifier": rp.verifier})
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_dpop_proof"


def test_a_client_registered_for_dpop_must_send_a_proof(app, key):
    rp = register(app, dpop_bound_access_tokens=True)
    answer = rp.exchange(rp.code())
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_dpop_proof"
    assert rp.dpop_tokens(key)["token_type"] == "DPoP"


def test_a_bound_token_needs_its_proof_at_userinfo(rp, key):
    access = rp.dpop_tokens(key)["access_token"]
    good = proof(key, USERINFO, "GET", access_token=access)
    cases = {
        "as Bearer": rp.userinfo(access, "Bearer"),
        "as Bearer with a proof": rp.userinfo(access, "Bearer", good),
        "without a proof": rp.userinfo(access),
        "another key's proof": rp.userinfo(access, dpop=proof(
            ECKey.generate_key("P-256"), USERINFO, "GET", access_token=access)),
        "proof without ath": rp.userinfo(access, dpop=proof(key, USERINFO, "GET")),
        "proof for the token endpoint": rp.userinfo(access, dpop=proof(
            key, TOKEN, "POST", access_token=access)),
    }
    for name, answer in cases.items():
        assert answer.status_code == 401, name
        challenge = answer.headers["WWW-Authenticate"]
        assert challenge.startswith("DPoP ") and 'algs="' in challenge, (name, challenge)
        assert answer.get_json()["error"] in ("invalid_token", "invalid_dpop_proof"), name
    assert rp.userinfo(access, dpop=good).status_code == 200
    replay = rp.userinfo(access, dpop=good)
    assert replay.status_code == 401 and replay.get_json()["error"] == "invalid_dpop_proof"


def test_a_bearer_token_with_the_dpop_scheme_is_refused(rp, key):
    access = rp.exchange(rp.code()).get_json()["access_token"]
    answer = rp.userinfo(access, dpop=proof(key, USERINFO, "GET", access_token=access))
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_token"
    assert rp.userinfo(access, "Bearer").status_code == 200


def test_nonces_at_userinfo_when_required_everywhere(keys_dir, database_url, key):
    from psc_idp.extensions import db

    app = create_app(base_settings(keys_dir, database_url, dpop_nonce="all"))
    rp = register(app)
    access = rp.dpop_tokens(key)["access_token"]
    answer = rp.userinfo(access, dpop=proof(key, USERINFO, "GET", access_token=access))
    assert answer.status_code == 401 and answer.get_json()["error"] == "use_dpop_nonce"
    assert 'DPoP realm="psc-idp", error="use_dpop_nonce"' in answer.headers["WWW-Authenticate"]
    nonce = answer.headers["DPoP-Nonce"]
    assert rp.userinfo(access, dpop=proof(key, USERINFO, "GET", access_token=access,
                                          nonce=nonce)).status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_no_nonce_needed_when_nonces_are_off(keys_dir, database_url, key):
    from psc_idp.extensions import db

    app = create_app(base_settings(keys_dir, database_url, dpop_nonce="none"))
    rp = register(app)
    answer = rp.exchange(rp.code(), proof(key))
    assert answer.status_code == 200 and answer.get_json()["token_type"] == "DPoP"
    with app.app_context():
        db.engine.dispose()


def test_a_public_clients_refresh_token_is_bound_to_the_key(app, key):
    rp = register(app, auth_method="none")
    tokens = rp.dpop_tokens(key)
    other = ECKey.generate_key("P-256")
    assert rp.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_dpop_proof"
    wrong = rp.refresh(tokens["refresh_token"], proof(other, nonce=rp.nonce()))
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    assert rp.introspect(tokens["refresh_token"])["cnf"] == {"jkt": key.thumbprint()}
    refreshed = rp.refresh(tokens["refresh_token"], proof(key, nonce=rp.nonce()))
    assert refreshed.status_code == 200, refreshed.get_json()
    assert claims_of(refreshed.get_json()["access_token"])["cnf"]["jkt"] == key.thumbprint()


def test_a_confidential_clients_refresh_token_follows_its_authentication(rp, key):
    """RFC 9449 §5: bound to the client's credentials, not to the key; a refresh with a
    proof gets a token bound to that proof's key, one without a Bearer token."""
    tokens = rp.dpop_tokens(key)
    other = ECKey.generate_key("P-256")
    rebound = rp.refresh(tokens["refresh_token"], proof(other, nonce=rp.nonce())).get_json()
    assert claims_of(rebound["access_token"])["cnf"]["jkt"] == other.thumbprint()
    bearer = rp.refresh(rebound["refresh_token"]).get_json()
    assert bearer["token_type"] == "Bearer" and "cnf" not in claims_of(bearer["access_token"])


def test_a_code_issued_for_dpop_jkt_needs_that_key(rp, key):
    code = rp.code(dpop_jkt=key.thumbprint())
    assert rp.exchange(code).get_json()["error"] == "invalid_dpop_proof"
    other = rp.exchange(code, proof(ECKey.generate_key("P-256"), nonce=rp.nonce()))
    assert other.get_json()["error"] == "invalid_grant"
    assert rp.exchange(code, proof(key, nonce=rp.nonce())).status_code == 200


def test_dpop_jkt_at_the_authorization_endpoint_is_checked(rp):
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": REDIRECT,
              "scope": "openid scope_all", "state": "s", "dpop_jkt": "not-a-thumbprint",
              "code_challenge": s256(rp.verifier), "code_challenge_method": "S256"}
    answer = rp.http.get(ISSUER_PATH + PATHS["authorization_endpoint"], base_url=BASE_URL,
                         query_string=params)
    assert answer.status_code == 302
    sent = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert sent["error"] == ["invalid_request"] and "dpop_jkt" in sent["error_description"][0]


def test_discovery_and_registration(app, rp):
    from psc_idp.clients import describe, find

    document = rp.http.get(ISSUER_PATH + "/.well-known/openid-configuration",
                           base_url=BASE_URL).get_json()
    assert "ES256" in document["dpop_signing_alg_values_supported"]
    assert "none" not in document["dpop_signing_alg_values_supported"]
    with app.app_context():
        assert describe(find(rp.client_id))["dpop_bound_access_tokens"] is False


def test_housekeeping_forgets_old_proofs(app, rp, key):
    from psc_idp import housekeeping
    from psc_idp.oidc.models import now

    rp.dpop_tokens(key)
    with app.app_context():
        assert housekeeping.purge(current=now() + 3600)["DPoP proof jtis"] >= 1


def _raw(header, payload, signature: str = "c2ln") -> str:
    def part(value):
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    return f"{part(header)}.{part(payload)}.{signature}"


EC = ECKey.generate_key("P-256").as_dict(private=False)
HOSTILE = [
    _raw({"typ": "dpop+jwt", "alg": "none", "jwk": EC}, {"jti": "a"}, ""),
    _raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "x": 1}}, {}),
    _raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256"}}, {}),
    _raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": "x"}, {}),
    _raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": {**EC, "crv": "P-384"}}, {}),
    _raw({"typ": "dpop+jwt", "alg": "RS256", "jwk": EC}, {}),
    _raw({"typ": "dpop+jwt", "alg": ["ES256"], "jwk": EC}, {}),
    _raw({"typ": 5, "alg": "ES256", "jwk": EC}, {}),
    _raw([1, 2], {}),
    _raw(b"\xff\xfe", b"\x00"),
    _raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": EC}, "x" * 20000),
    "é.é.é", "a" * 9000, "...", "a.b", " ",
]


@pytest.mark.parametrize("value", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_proofs_are_refused_cleanly(rp, value):
    """Never a 500: each is invalid_dpop_proof (a header werkzeug drops: no proof)."""
    answer = rp.exchange(rp.code(), value)
    assert answer.status_code == 400
    assert answer.get_json()["error"] in ("invalid_dpop_proof", "invalid_grant")


@pytest.mark.parametrize("claims", [
    {"ath": "é"}, {"ath": 5}, {"nonce": "é\ud800"}, {"nonce": 5}, {"jti": "\ud800"},
    {"jti": 5}, {"iat": "now"}, {"iat": float("nan")}, {"iat": True}, {"htu": 5},
    {"htu": "https://[bad"}, {"htm": None},
], ids=lambda claims: "-".join(claims))
def test_signed_proofs_with_hostile_claims_are_refused_cleanly(rp, key, claims):
    answer = rp.exchange(rp.code(), proof(key, **claims))
    assert answer.status_code == 400
    assert answer.get_json()["error"] in ("invalid_dpop_proof", "use_dpop_nonce")
    access = rp.exchange(rp.code()).get_json()["access_token"]
    at_userinfo = {"htu": USERINFO, "htm": "GET", **claims}
    answer = rp.userinfo(access, dpop=proof(key, access_token=access, **at_userinfo))
    assert answer.status_code == 401


def test_every_door_sets_dpop_bound_access_tokens(app):
    """The CLI (``--dpop``), and RFC 7591 under an initial access token that requires it
    (``issue-iat --dpop``): a registration may not turn it off."""
    from psc_idp.cli import main

    runner = app.test_cli_runner()
    created = runner.invoke(main, ["clients", "create", "--name", "cli", "--redirect-uri",
                                   REDIRECT, "--dpop", "--json"])
    assert created.exit_code == 0 and json.loads(created.output)["dpop_bound_access_tokens"]
    issued = runner.invoke(main, ["clients", "issue-iat", "--dpop", "--uses", "2"])
    assert "dpop_bound_access_tokens=True" in issued.output
    iat = issued.output.split("initial_access_token: ")[1].split()[0]
    http, url = app.test_client(), ISSUER_PATH + "/clients-registrations/openid-connect"

    def register(**metadata):
        return http.post(url, base_url=BASE_URL, headers={"Authorization": f"Bearer {iat}"},
                         json={"client_name": "vendor", "redirect_uris": [REDIRECT],
                               **metadata})
    refused = register(dpop_bound_access_tokens=False)
    assert refused.status_code == 400 and "dpop_bound_access_tokens" in refused.get_json()[
        "error_description"]
    assert register().get_json()["dpop_bound_access_tokens"] is True
