"""Key rotation as relying parties see it: the new key is in the JWKS before it signs, tokens
signed before the rotation still verify after it, the old key leaves the JWKS once they
have all expired and is then destroyed. ``psc-idp keys`` runs in its own process; the
serving process picks its changes up without a restart."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from psc_idp import create_app
from psc_idp.keys import lifecycle
from psc_idp.keys.cli import keys_cli
from psc_idp.keys.ring import KeyRingError, load_key_ring

from .plugins.idp import SECRET, base_settings, running_idp
from .support import code_from

PSC_IDP = str(Path(sys.executable).with_name("psc-idp"))
LIFETIMES = {"access_token_lifetime": 10, "id_token_lifetime": 10, "key_retire_margin": 1}


@pytest.fixture
def keys(keys_dir, tmp_path) -> Path:
    """A private copy of the session's file keys (RS256, PS256, ES256)."""
    return Path(shutil.copytree(keys_dir, tmp_path / "keys"))


def header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def keys_cmd(keys_dir: Path, *args: str, **settings) -> subprocess.CompletedProcess:
    values = {"secret_key": SECRET, "keys_dir": str(keys_dir),
              "keys_passphrase": "test-passphrase", **settings}
    config = keys_dir.parent / "keys.toml"
    config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    return subprocess.run([PSC_IDP, "keys", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PSC_IDP_CONFIG": str(config)})


def entry(keys_dir: Path, kid: str) -> dict | None:
    found = [e for e in json.loads((keys_dir / "keys.json").read_text()) if e["kid"] == kid]
    return found[0] if found else None


def wait_until(timestamp: float) -> None:
    time.sleep(max(0.0, timestamp - time.time()) + 0.2)


def test_rotation_publishes_first_keeps_old_tokens_valid_then_removes(
        keys, database_url, cards, smtp_server, tmp_path, browser_factory, demo_card):
    with running_idp(keys, database_url, cards, smtp_server, tmp_path, key_publish_delay=0,
                     **LIFETIMES) as idp:
        rp, browser = idp.rp(), browser_factory(idp)
        before = rp.exchange(code_from(browser.with_card(
            demo_card, rp.authorization_url()))["code"]).json()
        old = header(before["id_token"])["kid"]

        rotated = keys_cmd(keys, "rotate", "--alg", "RS256", "--publish-delay", "6",
                           **LIFETIMES)
        assert rotated.returncode == 0, rotated.stderr
        new = rotated.stdout.split("\t")[0]
        published = {k["kid"] for k in rp.jwks()["keys"]}
        assert {old, new} <= published  # in the JWKS before it signs...
        jwks = requests.get(rp.url("jwks_uri"), verify=idp.ca, timeout=10)
        assert jwks.headers["Cache-Control"] == "max-age=0"  # cached < key_publish_delay
        second = rp.exchange(code_from(browser.get(rp.authorization_url()))["code"]).json()
        assert header(second["id_token"])["kid"] == old  # ...which it does not do yet

        wait_until(entry(keys, new)["activate_at"])
        third = rp.exchange(code_from(browser.get(rp.authorization_url()))["code"]).json()
        assert header(third["id_token"])["kid"] == new
        assert header(third["access_token"])["kid"] == new
        assert rp.verify_id_token(before["id_token"])  # issued before the rotation
        assert rp.userinfo(second["access_token"]).status_code == 200
        assert old in {k["kid"] for k in rp.jwks()["keys"]}  # retired, still published
        other = create_app(base_settings(keys, database_url, **LIFETIMES))  # another process
        assert other.extensions["psc_idp"].keys.signer("RS256").kid == new

        wait_until(entry(keys, old)["remove_at"])
        assert old not in {k["kid"] for k in rp.jwks()["keys"]}
        assert rp.verify_id_token(third["id_token"])
        cron = keys_cmd(keys, "rotate", "--if-older-than", "30", **LIFETIMES)
        assert cron.stdout.splitlines() == [f"{old}\tdestroyed (no longer published)",
                                            "nothing to rotate"]
        assert entry(keys, old) is None and not (keys / f"{old}.pem").exists()


def test_a_running_ring_follows_the_index_and_survives_a_broken_one(keys):
    settings = {"keys_passphrase": "test-passphrase", **LIFETIMES}
    ring = load_key_ring(keys, settings)
    old = ring.signer("ES256").kid
    [new] = lifecycle.rotate(keys, settings, ["ES256"], publish_delay=0)
    assert ring.signer("ES256").kid == new["kid"] != old  # no restart
    good = (keys / "keys.json").read_text()
    (keys / "keys.json").write_text(good[:40])  # someone edits it by hand, badly
    assert ring.signer("ES256").kid == new["kid"]  # the last good state keeps serving
    health = ring.health()
    assert health["ok"] is False and "keys.json" in health["problems"]
    (keys / "keys.json").write_text(good)
    assert ring.health()["ok"] is True


def test_keys_commands(keys, tmp_path):
    config = tmp_path / "psc-idp.toml"
    config.write_text(f'secret_key = "{SECRET}"\nkeys_dir = "{keys}"\n'
                      'keys_passphrase = "test-passphrase"\n')
    runner = CliRunner(env={"PSC_IDP_CONFIG": str(config)})
    refused = runner.invoke(keys_cli, ["generate", "--alg", "RS256"])
    assert refused.exit_code == 1 and "use 'psc-idp keys rotate'" in refused.output
    cron = runner.invoke(keys_cli, ["rotate", "--if-older-than", "90"])
    assert cron.output == "nothing to rotate\n"  # keys younger than 90 days
    rotated = runner.invoke(keys_cli, ["rotate", "--alg", "ES256"])
    assert rotated.exit_code == 0 and rotated.output.startswith("es256-")
    listed = json.loads(runner.invoke(keys_cli, ["list", "--json"]).output)
    assert sorted(e["state"] for e in listed if e["alg"] == "ES256") == ["active", "next"]
    waiting = [e for e in listed if e["state"] == "next"][0]
    assert waiting["activate_at"] - waiting["created"] == 600  # key_publish_delay
    again = runner.invoke(keys_cli, ["rotate", "--if-older-than", "0"])
    assert [line.split("\t")[1] for line in again.output.splitlines()] == ["RS256", "PS256"]
    assert runner.invoke(keys_cli, ["check"]).output == "ok: RS256, PS256, ES256\n"


def test_generate_on_a_ring_in_service_publishes_first(tmp_path):
    keys = tmp_path / "keys"
    lifecycle.generate_keys(keys, "pass", ["RS256"])
    [es256] = lifecycle.generate_keys(keys, {"keys_passphrase": "pass",
                                             "key_publish_delay": 300}, ["ES256"])
    assert es256["activate_at"] - es256["created"] == 300
    ring = load_key_ring(keys, "pass")
    assert ring.algorithms == ["RS256"]
    assert es256["kid"] in {k["kid"] for k in ring.jwks()["keys"]}
    with pytest.raises(KeyRingError, match="no signing key for ES256"):
        ring.signer("ES256")
