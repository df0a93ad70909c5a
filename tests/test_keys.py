"""Signing keys: in a PKCS#11 HSM (SoftHSM2 token, keys generated inside, never
extractable) and in files; rotation publishes a key before it signs and keeps the old one
published until its tokens have expired; an unreachable HSM gives a clean 503 and psc-idp
recovers by itself when it comes back."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from psc_idp.keys import ring as ring_module
from psc_idp.keys.cli import keys_cli
from psc_idp.keys.ring import generate_keys
from psc_idp.sandbox.cards import softhsm_module

from .plugins.idp import running_idp
from .support import code_from

PIN = "987654"


def header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


@pytest.fixture(scope="session")
def hsm(tmp_path_factory):
    """A SoftHSM2 token for signing keys, used by this test process's PKCS#11 library."""
    root = tmp_path_factory.mktemp("hsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "psc-idp-keys",
                    "--so-pin", "12345678", "--pin", PIN], check=True, capture_output=True)
    return root


def hsm_settings() -> dict:
    return {"pkcs11_module": softhsm_module(), "pkcs11_token_label": "psc-idp-keys",
            "pkcs11_pin": PIN}


@pytest.fixture
def hsm_keys(hsm, tmp_path) -> Path:
    keys = tmp_path / "hsm-keys"
    generate_keys(keys, {"keys_passphrase": "", **hsm_settings()}, ["RS256", "ES256"],
                  backend="pkcs11")
    return keys


@pytest.fixture(autouse=True)
def reload_at_once(monkeypatch):
    monkeypatch.setattr(ring_module, "RELOAD_EVERY", 0)


def test_tokens_signed_in_the_hsm(hsm_keys, database_url, cards, smtp_server, tmp_path,
                                  browser_factory, demo_card):
    with running_idp(hsm_keys, database_url, cards, smtp_server, tmp_path,
                     **hsm_settings()) as idp:
        browser = browser_factory(idp)
        code_from(browser.with_card(demo_card, idp.rp().authorization_url()))
        for alg in ("RS256", "ES256"):
            rp = idp.rp(id_token_alg=alg)
            tokens = rp.exchange(code_from(browser.get(rp.authorization_url()))[
                "code"]).json()
            assert header(tokens["id_token"])["alg"] == alg
            assert rp.verify_id_token(tokens["id_token"])["preferred_username"] == \
                demo_card.id_nat
            assert rp.userinfo(tokens["access_token"]).status_code == 200
        with idp.app.app_context():
            keys = idp.app.extensions["psc_idp"].keys
            assert keys.signer("RS256").extractable() is False
            assert keys.health()["ok"] is True


def test_hsm_outage_is_a_clean_503_and_recovers(hsm, hsm_keys, database_url, cards,
                                               smtp_server, tmp_path, browser_factory,
                                               demo_card):
    with running_idp(hsm_keys, database_url, cards, smtp_server, tmp_path,
                     **hsm_settings()) as idp:
        rp = idp.rp()
        code = code_from(browser_factory(idp).with_card(
            demo_card, rp.authorization_url()))["code"]
        tokens_dir = hsm / "tokens"
        shutil.move(tokens_dir, hsm / "tokens.unplugged")  # the HSM goes away
        try:
            during = rp.exchange(code)
            assert during.status_code == 503
            assert during.json()["error"] == "temporarily_unavailable"
            ready = requests.get(idp.issuer.split("/auth/")[0] + "/readyz", verify=idp.ca,
                                 timeout=10)
            assert ready.status_code == 503 and ready.json()["checks"]["keys"]["ok"] is False
        finally:
            shutil.move(hsm / "tokens.unplugged", tokens_dir)
        # back without a restart; the code was not consumed by the failed attempt
        after = rp.exchange(code)
        assert after.status_code == 200, after.text
        assert rp.verify_id_token(after.json()["id_token"])


def _edit(keys_dir: Path, change) -> None:
    index = keys_dir / "keys.json"
    entries = json.loads(index.read_text())
    change(entries)
    index.write_text(json.dumps(entries))
    future = time.time() + 1
    os.utime(index, (future, future))  # a visibly newer file for the reloader


def test_rotation_publishes_first_and_keeps_old_keys(keys_dir, database_url, cards,
                                                     smtp_server, tmp_path, browser_factory,
                                                     demo_card):
    keys = tmp_path / "keys"
    shutil.copytree(keys_dir, keys)
    settings = {"keys_passphrase": "test-passphrase", "access_token_lifetime": 120,
                "id_token_lifetime": 120}
    with running_idp(keys, database_url, cards, smtp_server, tmp_path) as idp:
        rp, browser = idp.rp(), browser_factory(idp)
        first = rp.exchange(code_from(browser.with_card(
            demo_card, rp.authorization_url()))["code"]).json()["id_token"]
        old_kid = header(first)["kid"]

        [new] = ring_module.rotate(keys, settings, ["RS256"], publish_delay=3600)
        kids = {k["kid"] for k in rp.jwks()["keys"]}
        assert {old_kid, new["kid"]} <= kids  # published before it signs
        second = rp.exchange(code_from(browser.get(rp.authorization_url()))["code"]).json()
        assert header(second["id_token"])["kid"] == old_kid

        def activate_now(entries):
            for e in entries:
                if e["kid"] == new["kid"]:
                    e["activate_at"] = int(time.time()) - 1
                if e["kid"] == old_kid:
                    e["retire_at"] = int(time.time()) - 1
        _edit(keys, activate_now)
        third = rp.exchange(code_from(browser.get(rp.authorization_url()))["code"]).json()
        assert header(third["id_token"])["kid"] == new["kid"]
        assert rp.verify_id_token(first)  # issued before the rotation, still verifies

        def long_ago(entries):
            for e in entries:
                if e["kid"] == old_kid:
                    e["retire_at"] = int(time.time()) - 3600
        _edit(keys, long_ago)
        assert old_kid not in {k["kid"] for k in rp.jwks()["keys"]}


def test_keys_commands(keys_dir, tmp_path):
    keys = tmp_path / "keys"
    shutil.copytree(keys_dir, keys)
    config = tmp_path / "psc-idp.toml"
    config.write_text(f'secret_key = "{"x" * 40}"\nkeys_dir = "{keys}"\n'
                      'keys_passphrase = "test-passphrase"\n')
    runner = CliRunner(env={"PSC_IDP_CONFIG": str(config)})
    result = runner.invoke(keys_cli, ["rotate", "--alg", "ES256", "--publish-delay", "600"])
    assert result.exit_code == 0 and "es256-" in result.output
    listed = runner.invoke(keys_cli, ["list"]).output
    assert "ES256\tfile\tnext" in listed and "ES256\tfile\tactive" in listed
    again = runner.invoke(keys_cli, ["rotate", "--alg", "ES256", "--publish-delay", "600"])
    assert again.output.strip() == "nothing to rotate"  # one rotation at a time
    cron = runner.invoke(keys_cli, ["rotate", "--alg", "RS256", "--if-older-than", "90"])
    assert cron.output.strip() == "nothing to rotate"  # keys are younger than 90 days
