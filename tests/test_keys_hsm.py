"""Signing keys in a PKCS#11 HSM (a SoftHSM2 token owned by this test process): the key
pairs are generated in the token and never leave it; ID tokens it signs verify against the
published JWKS; when the token goes away token requests get 503 temporarily_unavailable
with nothing issued, and the same code works once it is back, without a restart."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from psc_idp.keys.ring import load_key_ring
from psc_idp.sandbox.cards import softhsm_module

from .plugins.idp import SECRET, running_idp
from .support import code_from

LABEL, PIN = "psc-idp-signing", "246813"
PSC_IDP = str(Path(sys.executable).with_name("psc-idp"))


def header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


@pytest.fixture(scope="session")
def hsm_token(tmp_path_factory):
    """A SoftHSM2 token for signing keys. SOFTHSM2_CONF is set before this process loads
    the PKCS#11 module, which it reads once (the card fixtures only use the module in child
    processes, with their own configuration)."""
    root = tmp_path_factory.mktemp("signing-hsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", LABEL,
                        "--so-pin", "12345678", "--pin", PIN], check=True, capture_output=True)
        yield root


def hsm_settings(**extra) -> dict:
    return {"keys_backend": "pkcs11", "pkcs11_module": softhsm_module(),
            "pkcs11_token_label": LABEL, "pkcs11_pin": PIN, **extra}


def keys_cmd(keys_dir: Path, *args: str, **settings) -> subprocess.CompletedProcess:
    """``psc-idp keys ...`` in its own process, configured by a TOML file."""
    values = {"secret_key": SECRET, "keys_dir": str(keys_dir),
              "keys_passphrase": "test-passphrase",
              **hsm_settings(), **settings}
    config = keys_dir.parent / f"{keys_dir.name}.toml"
    config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return subprocess.run([PSC_IDP, "keys", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PSC_IDP_CONFIG": str(config)})


@pytest.fixture
def hsm_keys(hsm_token, tmp_path) -> Path:
    keys = tmp_path / "hsm-keys"
    done = keys_cmd(keys, "generate")
    assert done.returncode == 0, done.stderr
    return keys


@pytest.fixture(params=["hsm", "id-token-key-in-hsm"])
def outage_keys(request, hsm_token, tmp_path) -> tuple[Path, str]:
    """Keys whose token goes away, and the ID token algorithm of the relying party: with
    the access token key on file, the failure comes after the first signature."""
    if request.param == "hsm":
        return request.getfixturevalue("hsm_keys"), "RS256"
    keys = tmp_path / "mixed-keys"
    assert keys_cmd(keys, "generate", "--alg", "RS256", "--backend", "file").returncode == 0
    assert keys_cmd(keys, "generate", "--alg", "ES256", key_publish_delay=0).returncode == 0
    return keys, "ES256"


def kids(keys_dir: Path) -> dict[str, str]:
    return {e["alg"]: e["kid"] for e in json.loads((keys_dir / "keys.json").read_text())}


def in_child(code: str) -> str:
    """Run python-pkcs11 ``code`` in a child process, as any PKCS#11 application would,
    with ``session`` open on the token; returns what it prints."""
    script = textwrap.dedent(f"""
        import pkcs11
        from pkcs11 import Attribute, ObjectClass
        token = pkcs11.lib({softhsm_module()!r}).get_token(token_label={LABEL!r})
        with token.open(user_pin={PIN!r}) as session:
    """) + textwrap.indent(textwrap.dedent(code), "    ")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True).stdout


def token_labels() -> set[str]:
    return set(in_child("""
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            print(obj.label)
    """).split())


def test_id_tokens_signed_in_the_hsm_verify_against_the_jwks(
        hsm_keys, database_url, cards, smtp_server, tmp_path, browser_factory, demo_card):
    with running_idp(hsm_keys, database_url, cards, smtp_server, tmp_path,
                     **hsm_settings()) as idp:
        browser = browser_factory(idp)
        code_from(browser.with_card(demo_card, idp.rp().authorization_url()))
        assert {k["kid"] for k in idp.rp().jwks()["keys"]} == set(kids(hsm_keys).values())
        for alg in ("RS256", "PS256", "ES256"):
            rp = idp.rp(id_token_alg=alg)
            tokens = rp.exchange(code_from(browser.get(rp.authorization_url()))["code"]).json()
            assert header(tokens["id_token"]) == {"alg": alg, "typ": "JWT",
                                                  "kid": kids(hsm_keys)[alg]}
            claims = rp.verify_id_token(tokens["id_token"])  # against the served JWKS
            assert claims["preferred_username"] == demo_card.id_nat
            assert header(tokens["access_token"])["kid"] == kids(hsm_keys)["RS256"]
            assert rp.userinfo(tokens["access_token"]).status_code == 200
            refreshed = rp.refresh(tokens["refresh_token"]).json()
            assert rp.verify_id_token(refreshed["id_token"])["sid"] == claims["sid"]


def test_private_keys_never_leave_the_token(hsm_keys):
    ring = load_key_ring(hsm_keys, hsm_settings())
    for alg in ("RS256", "PS256", "ES256"):
        assert ring.signer(alg).private_attributes() == {
            "sensitive": True, "extractable": False, "always_sensitive": True,
            "never_extractable": True, "local": True}  # generated in the token
    # what any PKCS#11 application gets when it asks for the key's value
    assert in_child(f"""
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                              label={kids(hsm_keys)['RS256']!r})
        try:
            key[Attribute.PRIVATE_EXPONENT]
        except pkcs11.AttributeSensitive:
            print("sensitive")
    """).strip() == "sensitive"


def test_hsm_outage_is_a_clean_503_and_recovers(hsm_token, outage_keys, database_url, cards,
                                               smtp_server, tmp_path, browser_factory,
                                               demo_card):
    from psc_idp.audit import AuditEvent
    from psc_idp.extensions import db
    from psc_idp.oidc.models import AuthorizationCode, Token, digest

    def issued() -> tuple[int, int, int | None]:
        with idp.app.app_context():
            return (db.session.scalar(select(func.count()).select_from(Token)),
                    db.session.scalar(select(func.count()).select_from(AuditEvent).where(
                        AuditEvent.event == "token.issued")),
                    db.session.get(AuthorizationCode, digest(code)).used_at)

    keys, id_token_alg = outage_keys
    with running_idp(keys, database_url, cards, smtp_server, tmp_path,
                     **hsm_settings()) as idp:
        rp = idp.rp(id_token_alg=id_token_alg)
        ready_url = idp.ops_url + "/readyz"  # the details are for operators
        code = code_from(browser_factory(idp).with_card(
            demo_card, rp.authorization_url()))["code"]
        before = issued()
        shutil.move(hsm_token / "tokens", hsm_token / "unplugged")  # the token goes away
        try:
            during = rp.exchange(code)
            assert during.status_code == 503 and during.headers["Retry-After"]
            assert during.json()["error"] == "temporarily_unavailable"
            assert issued() == before == (before[0], before[1], None)  # nothing half-issued
            ready = requests.get(ready_url, verify=idp.ca, timeout=10)
            assert ready.status_code == 503
            assert ready.json()["checks"]["keys"]["ok"] is False
            # the JWKS does not need the token: relying parties keep verifying
            assert len(rp.jwks()["keys"]) == len(kids(keys))
        finally:
            shutil.move(hsm_token / "unplugged", hsm_token / "tokens")
        deadline = time.monotonic() + 20
        while requests.get(ready_url, verify=idp.ca, timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "no recovery without a restart"
            time.sleep(0.5)
        after = rp.exchange(code)  # the code survived the failed attempt
        assert after.status_code == 200, after.text
        id_token = after.json()["id_token"]
        assert header(id_token)["kid"] == kids(keys)[id_token_alg]
        assert rp.verify_id_token(id_token)["nonce"] == rp.nonce
        assert rp.exchange(code).json()["error"] == "invalid_grant"  # still single use


def test_keys_check_reports_a_refused_pin_and_a_broken_module(hsm_keys):
    assert keys_cmd(hsm_keys, "check").returncode == 0
    wrong_pin = keys_cmd(hsm_keys, "check", pkcs11_pin="000000")
    assert wrong_pin.returncode == 1
    assert "refused the PIN (PinIncorrect): fix pkcs11_pin and restart" in wrong_pin.stderr
    no_module = keys_cmd(hsm_keys, "check", pkcs11_module="/nonexistent/libpkcs11.so")
    assert no_module.returncode == 1 and "/nonexistent/libpkcs11.so" in no_module.stderr
    assert keys_cmd(hsm_keys, "check").returncode == 0  # the token did not lock


def test_rotation_in_the_hsm_destroys_the_removed_key(hsm_keys):
    short = {"access_token_lifetime": 1, "id_token_lifetime": 1, "key_retire_margin": 0}
    old = kids(hsm_keys)["ES256"]
    rotated = keys_cmd(hsm_keys, "rotate", "--alg", "ES256", "--publish-delay", "0", **short)
    assert rotated.returncode == 0, rotated.stderr
    new = kids(hsm_keys)["ES256"]
    ring = load_key_ring(hsm_keys, hsm_settings(**short))
    assert ring.signer("ES256").kid == new != old
    time.sleep(1.5)  # every token the old key signed has expired
    purged = keys_cmd(hsm_keys, "rotate", "--if-older-than", "1", **short)
    assert f"{old}\tdestroyed" in purged.stdout and "nothing to rotate" in purged.stdout
    assert old not in {k["kid"] for k in ring.jwks()["keys"]}
    assert keys_cmd(hsm_keys, "check").returncode == 0
    assert old not in token_labels() and new in token_labels()
