"""``psc-idp sandbox init`` run for real (test PKI, SoftHSM cards, configuration, database):
KIT's card opens the ops console out of the box, and the card descriptions — of
``psc-idp sandbox cards`` and softhsm/README.md — say what the demo directory says."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from psc_idp import create_app
from psc_idp.sandbox.cards import USER_PIN, SoftHsm
from psc_idp.sandbox.demo import CONSOLE_ADMIN, DEMO_CARDS, REFUSED_CARDS, directory_rows
from psc_idp.serve import Listeners, start_reactor

from .plugins.cards import curl_with_card
from .plugins.idp import REPO, Idp, LiveServer, free_port
from .support import Browser
from .test_cli import psc_idp
from .test_console import card_login

KIT = CONSOLE_ADMIN
NUMBERS = {"une": 1, "deux": 2, "trois": 3}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A sandbox made by the real command, on free ports."""
    directory = tmp_path_factory.mktemp("sandbox") / "var"
    port, card_port = free_port(), free_port()
    done = psc_idp("sandbox", "init", str(directory),
                   "--issuer", f"https://localhost:{port}/auth/realms/esante-wallet",
                   "--card-login-url", f"https://localhost:{card_port}", timeout=600)
    assert done.returncode == 0, done.stderr
    return directory, port, card_port, done.stdout


@pytest.fixture
def live_sandbox(sandbox):
    directory, port, card_port, _ = sandbox
    app = create_app({"listen": f"127.0.0.1:{port}", "card_listen": f"127.0.0.1:{card_port}",
                      "ops_listen": "", "mtls_listen": ""},
                     environ={"PSC_IDP_CONFIG": str(directory / "psc-idp.toml")})
    start_reactor()
    server = LiveServer(app, [Listeners(app)])
    server.start()
    try:
        yield Idp(server, directory / "pki" / "tls-ca.pem")
    finally:
        server.stop()
        with app.app_context():
            from psc_idp.extensions import db

            db.engine.dispose()


def test_init_names_the_console_and_its_card(sandbox):
    directory, port, _, output = sandbox
    assert (f"sandbox: ops console https://localhost:{port}/admin/console/ with card "
            f"CPS-{CONSOLE_ADMIN} (KIT DOC0024566), PIN {USER_PIN}") in output.splitlines()
    assert f'admins = ["{CONSOLE_ADMIN}"]' in (directory / "psc-idp.toml").read_text()


def test_kit_opens_the_console_after_init(live_sandbox, sandbox):
    hsm = SoftHsm(sandbox[0] / "softhsm")
    ca = live_sandbox.ca

    def card_curl(card, url, **kwargs):
        return curl_with_card(hsm, ca, card, url, **kwargs)

    console = card_login(live_sandbox, Browser(str(ca), card_curl), hsm.card(f"CPS-{KIT}"))
    assert console.status_code == 200 and 'id="keys"' in console.text
    refused = card_login(live_sandbox, Browser(str(ca), card_curl),
                         hsm.card("CPS-899700218896"))
    assert refused.status_code == 403 and 'data-reason="not_admin"' in refused.text


def test_card_descriptions_match_the_demo_directory(sandbox):
    rows = directory_rows()
    lines = Counter(row["Identification nationale PP"] for row in rows)
    assert lines[KIT] == 1 and lines["899700218896"] == 2  # KIT one activity, JEAN two
    for spec in DEMO_CARDS:
        mine = [row for row in rows if row["Identification nationale PP"] == spec.id_nat]
        assert {(r["Nom d'exercice"], r["Prénom d'exercice"]) for r in mine} == \
            {(spec.family_name, spec.given_name)}
        count = re.search(r"(\w+) activités?", spec.note).group(1)
        assert NUMBERS[count] == len(mine), spec.note
        assert all(r["Raison sociale site"] in spec.note for r in mine)
    assert "899700000005" not in lines  # CPS-UNKNOWN is unknown indeed

    listed = psc_idp("sandbox", "cards", str(sandbox[0]), "--json")
    assert listed.returncode == 0, listed.stderr
    assert {c["label"]: c["note"] for c in json.loads(listed.stdout)} == {
        spec.label: spec.note for spec in DEMO_CARDS + REFUSED_CARDS}

    table = (REPO / "softhsm" / "README.md").read_text(encoding="utf-8")
    for spec in DEMO_CARDS + REFUSED_CARDS:
        [row] = [line for line in table.splitlines()
                 if line.startswith(f"| {spec.label} | {spec.id_nat} |")]
        assert row.endswith(f"{spec.note} |"), row


def test_init_gives_an_older_sandbox_its_console_administrator(sandbox, tmp_path):
    written = (sandbox[0] / "psc-idp.toml").read_text()
    older = "".join(line for line in written.splitlines(keepends=True)
                    if not line.startswith("admins"))
    (tmp_path / "psc-idp.toml").write_text(older)
    done = psc_idp("sandbox", "init", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "is now the console administrator" in done.stdout
    assert (tmp_path / "psc-idp.toml").read_text() == older + f'admins = ["{KIT}"]\n'
    again = psc_idp("sandbox", "init", str(tmp_path))
    assert again.stdout.splitlines() == [
        f"sandbox: {tmp_path / 'psc-idp.toml'} exists, keeping the sandbox as it is"]
