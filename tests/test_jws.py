"""JWT assembly and verification: every algorithm round-trips through the JWKS;
tampered, unsigned (alg none) and foreign-key tokens are refused."""

import base64
import json

import pytest

from psc_idp.keys import jws
from psc_idp.keys.ring import load_key_ring


@pytest.fixture(scope="module")
def ring(keys_dir):
    return load_key_ring(keys_dir, "test-passphrase")


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_round_trip(ring, alg):
    token = jws.encode({"sub": "x", "exp": 4102444800}, ring.signer(alg))
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": alg, "typ": "JWT", "kid": ring.signer(alg).kid}
    assert jws.decode(token, ring.jwks())["sub"] == "x"


def test_tampered_payload_is_refused(ring):
    token = jws.encode({"sub": "alice"}, ring.signer("RS256"))
    head, _, sig = token.split(".")
    forged = jws.b64url(json.dumps({"sub": "mallory"}).encode())
    with pytest.raises(jws.InvalidJWT):
        jws.decode(f"{head}.{forged}.{sig}", ring.jwks())


def test_alg_none_is_refused(ring):
    header = jws.b64url(json.dumps({"alg": "none", "kid": ring.signer().kid}).encode())
    payload = jws.b64url(json.dumps({"sub": "mallory"}).encode())
    with pytest.raises(jws.InvalidJWT):
        jws.decode(f"{header}.{payload}.", ring.jwks())


def test_wrong_typ_is_refused(ring):
    token = jws.encode({"sub": "x"}, ring.signer())
    with pytest.raises(jws.InvalidJWT, match="typ"):
        jws.decode(token, ring.jwks(), typ="at+jwt")


def test_expired_token_is_refused(ring):
    token = jws.encode({"sub": "x", "exp": 1000}, ring.signer())
    with pytest.raises(jws.InvalidJWT):
        jws.decode(token, ring.jwks(), exp={"essential": True})


def test_garbage_is_refused(ring):
    for value in ("", "a.b", "a.b.c", "é.é.é", "x" * 5000):
        with pytest.raises(jws.InvalidJWT):
            jws.decode(value, ring.jwks())
