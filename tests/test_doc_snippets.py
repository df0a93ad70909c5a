"""Every block of docs/integrating.md runs as written against a live psc-idp: the Flask +
Authlib and openid-client programs are started as they are, in a directory laid out as the
sandbox's (``var/pki/tls-ca.pem``: the CA they are told to trust comes from the doc, not
from the test), the Apache block is served by a private httpd with mod_auth_openidc; a
browser logs in through each with a SoftHSM card, sees the idNat and the userinfo, and logs
out: the app's protected page asks for a login again and the IdP session is over. The
browser set-up the page describes names the sandbox's real files, module and tokens."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from psc_idp.clients import create_client
from psc_idp.sandbox.cards import SOFTHSM_MODULES

from .plugins.apache import INTEGRATING, apache_env, doc_snippets
from .plugins.idp import free_port
from .support import code_from, query

SNIPPETS = doc_snippets()
INTEROP = Path(__file__).with_name("interop")
AUTHORIZE, LOGOUT = "/protocol/openid-connect/auth", "/protocol/openid-connect/logout"


def test_every_block_is_marked_runnable():
    fences = re.findall(r"(?m)^```", INTEGRATING.read_text())
    assert len(fences) == 2 * len(SNIPPETS), "mark each block <!-- runnable: NAME -->"
    assert sorted(lang for lang, _ in SNIPPETS.values()) == ["apache", "js", "js", "python",
                                                             "python", "python", "sh", "sh"]


def register(idp, redirect_uri: str, logout_uri: str, **extra) -> tuple[str, str]:
    with idp.app.app_context():
        client, secret = create_client(name="doc snippet", redirect_uris=[redirect_uri],
                                       post_logout_redirect_uris=[logout_uri], **extra)
        return client.client_id, secret


@contextlib.contextmanager
def running(argv: list[str], cwd: Path, env: dict[str, str], port: int):
    """``argv`` as a child process serving ``port`` until the end of the block; its output
    is printed (pytest shows it when the test failed)."""
    output = cwd / "output.log"
    with output.open("w") as sink:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, output.read_text()
                assert time.monotonic() < deadline, output.read_text()
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
        print(f"{argv[-1]}:\n{output.read_text()}")


def program(name: str, tmp_path: Path, idp, client_id: str, secret: str, port: int):
    """The block ``name`` written to a file and run with the environment it documents."""
    lang, code = SNIPPETS[name]
    (tmp_path / name).write_text(code)
    (tmp_path / "var" / "pki").mkdir(parents=True)  # the sandbox's layout
    shutil.copy(idp.ca, tmp_path / "var" / "pki" / "tls-ca.pem")
    env = {"PATH": os.environ.get("PATH", ""), "ISSUER": idp.issuer, "CLIENT_ID": client_id,
           "CLIENT_SECRET": secret, "PORT": str(port)}
    if lang == "python":  # the program itself gives requests the sandbox's CA
        argv = [sys.executable, name]
    else:  # Node reads its extra CA at start: the variable as the doc's command sets it
        command = re.search(r"(?m)^ +NODE_EXTRA_CA_CERTS=(\S+) .* node app\.mjs$",
                            INTEGRATING.read_text())
        assert command, "the doc shows how to run app.mjs with the sandbox's CA"
        env["NODE_EXTRA_CA_CERTS"] = command[1]
        (tmp_path / "node_modules").symlink_to(INTEROP / "node_modules")
        argv = [shutil.which("node") or "node", name]
    return running(argv, tmp_path, env, port)


def assert_idp_session_ended(idp, browser):
    silent = browser.get(idp.rp().authorization_url(prompt="none"))
    assert code_from(silent)["error"] == "login_required"


@pytest.mark.parametrize("name", ["app.py", "app.mjs"])
def test_program_logs_in_shows_userinfo_and_logs_out(name, idp, browser, demo_card, tmp_path):
    port = free_port()
    app = f"http://localhost:{port}"
    client_id, secret = register(idp, app + "/callback", app + "/logged-out")
    with program(name, tmp_path, idp, client_id, secret, port):
        to_idp = browser.get(app + "/login")
        assert to_idp.headers["Location"].startswith(idp.issuer + AUTHORIZE + "?")
        request = query(to_idp.headers["Location"])
        assert request["scope"] == "openid scope_all" and request["acr_values"] == "eidas1"
        assert request["code_challenge_method"] == "S256" and request["nonce"]

        back = browser.with_card(demo_card, to_idp.headers["Location"])
        assert back.headers["Location"].startswith(app + "/callback?")
        assert browser.get(back.headers["Location"]).status_code == 302
        page = browser.get(app + "/").text
        assert f"idNat {demo_card.id_nat}" in page
        assert "codeProfession" in page and "CABINET M DOC0024566" in page

        logout = browser.session.post(app + "/logout", allow_redirects=False, timeout=10)
        assert logout.headers["Location"].startswith(idp.issuer + LOGOUT + "?")
        end_session = query(logout.headers["Location"])
        assert end_session["post_logout_redirect_uri"] == app + "/logged-out"
        assert "id_token_hint" in end_session
        ended = browser.get(logout.headers["Location"])
        assert ended.headers["Location"].startswith(app + "/logged-out")
        assert "Vous êtes déconnecté(e)" in browser.get(ended.headers["Location"]).text
        # the app's session is gone: its protected page sends to login again
        again = browser.get(app + "/")
        assert again.status_code == 302 and again.headers["Location"] in ("/login",
                                                                           app + "/login")
        assert browser.get(app + "/login").headers["Location"].startswith(
            idp.issuer + AUTHORIZE + "?")
    assert_idp_session_ended(idp, browser)


def test_dpop_program_gets_tokens_bound_to_its_key(idp, browser, demo_card, tmp_path):
    """The DPoP block, for a client registered with ``--dpop``: the token request and
    userinfo carry proofs (the nonce retry included), the tokens are DPoP-bound."""
    port = free_port()
    app = f"http://localhost:{port}"
    client_id, secret = register(idp, app + "/callback", app + "/logged-out",
                                 dpop_bound_access_tokens=True)
    with program("dpop.mjs", tmp_path, idp, client_id, secret, port):
        to_idp = browser.get(app + "/login")
        assert to_idp.headers["Location"].startswith(idp.issuer + AUTHORIZE + "?")
        back = browser.with_card(demo_card, to_idp.headers["Location"])
        assert browser.get(back.headers["Location"]).status_code == 302
        page = browser.get(app + "/").text
        assert f"idNat {demo_card.id_nat}" in page and "token_type dpop" in page.lower()


def sandbox_layout(cards, tmp_path: Path) -> Path:
    """``var/`` as a sandbox lays it out, on the session's SoftHSM and PKI."""
    var = tmp_path / "var"
    var.mkdir()
    (var / "softhsm").symlink_to(cards.hsm.directory)
    (var / "pki").symlink_to(cards.pki.directory)
    return var


def test_mtls_script_gets_a_certificate_bound_token_and_userinfo(
        keys_dir, database_url, cards, smtp_server, card_curl, demo_card, tmp_path):
    """The mTLS block as written, in a sandbox's layout: the organisation certificate is
    minted by ``psc-idp sandbox org-cert`` (its key in SoftHSM), its DN registered; the
    script exchanges a code at the mTLS token alias and reads userinfo with the bound
    token."""
    from .plugins.idp import running_idp
    from .support import Browser
    from .test_cli import psc_idp
    from .test_mtls import mtls_settings

    var = sandbox_layout(cards, tmp_path)
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     **mtls_settings(cards.pki)) as idp:
        client_id = f"doc-mtls-{free_port()}"
        minted = psc_idp("sandbox", "org-cert", str(var), "--client-id", client_id,
                         "--finess", "750000001", "--json", cwd=tmp_path)
        assert minted.returncode == 0, minted.stderr
        org = json.loads(minted.stdout)
        assert org["subject_dn"] == (f"CN={client_id},OU=1750000001,O=TEST ORGANISATION,"
                                     "C=FR")
        with idp.app.app_context():
            create_client(name="doc mtls", client_id=client_id,
                          redirect_uris=["https://rp.example/cb"],
                          auth_method="tls_client_auth",
                          tls_client_auth_subject_dn=org["subject_dn"],
                          tls_client_certificate_bound_access_tokens=True)
        rp = idp.rp()  # its authorization request, for the client registered above
        rp.client_id = client_id
        code = code_from(Browser(idp.ca, card_curl).with_card(
            demo_card, rp.authorization_url()))["code"]
        (tmp_path / "mtls.sh").write_text(SNIPPETS["mtls.sh"][1])
        env = {"PATH": os.environ.get("PATH", ""), "ISSUER": idp.issuer,
               "CLIENT_ID": client_id, "ORG": org["label"], "CODE": code,
               "CODE_VERIFIER": rp.verifier, "REDIRECT_URI": rp.redirect_uri}
        done = subprocess.run(["sh", "mtls.sh"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr + done.stdout
        assert json.loads(done.stdout)["SubjectNameID"] == demo_card.id_nat


def test_python_program_ends_its_session_on_back_channel_logout(idp, browser, demo_card,
                                                                tmp_path):
    """The session ends at the IdP without the app (the console's "end session"): psc-idp
    posts a logout token to the program, which checks it and ends its own session; a
    tampered token is refused."""
    from psc_idp.extensions import db
    from psc_idp.oidc import backchannel, revocation

    port = free_port()
    app = f"http://localhost:{port}"
    client_id, secret = register(idp, app + "/callback", app + "/logged-out",
                                 backchannel_logout_uri=app + "/backchannel-logout")
    with program("app.py", tmp_path, idp, client_id, secret, port):
        back = browser.with_card(demo_card, browser.get(app + "/login").headers["Location"])
        assert browser.get(back.headers["Location"]).status_code == 302
        assert f"idNat {demo_card.id_nat}" in browser.get(app + "/").text
        with idp.app.app_context():
            forged = backchannel.logout_token(client_id, "RS256", "x", demo_card.id_nat)
        header, payload, signature = forged.split(".")
        for bad in (f"{header}.{payload}.{signature[::-1]}", "", "a.b.c"):
            refused = browser.session.post(app + "/backchannel-logout", timeout=10,
                                           data={"logout_token": bad})
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
        assert f"idNat {demo_card.id_nat}" in browser.get(app + "/").text
        with idp.app.app_context():
            from psc_idp.oidc.models import LoginSession

            revocation.end_session(db.session.scalars(db.select(LoginSession.sid)).one())
            db.session.commit()
        deadline = time.monotonic() + 15  # the IdP's sender posts it within seconds
        while (again := browser.get(app + "/")).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert again.status_code == 302 and again.headers["Location"] in ("/login",
                                                                           app + "/login")


def test_par_program_pushes_a_signed_request_that_logs_in(idp, browser, demo_card, tmp_path):
    """The commands the page shows: a key pair made with openssl, its JWKS printed by the
    program and registered (PAR required), the push; the URL it prints logs in and the
    code it brings back is exchanged with an assertion of the same key."""
    from psc_idp.clients.cli import clients_cli

    (tmp_path / "par.py").write_text(SNIPPETS["par.py"][1])
    (tmp_path / "var" / "pki").mkdir(parents=True)
    shutil.copy(idp.ca, tmp_path / "var" / "pki" / "tls-ca.pem")
    text = INTEGRATING.read_text()
    keygen = re.search(r"(?m)^ +(openssl genpkey .* -out rp-key\.pem)$", text)[1]
    subprocess.run(keygen.split(), cwd=tmp_path, check=True, capture_output=True)
    env = {"PATH": os.environ.get("PATH", ""), "ISSUER": idp.issuer, "KEY_FILE": "rp-key.pem"}

    def par_py(*args: str) -> dict:
        done = subprocess.run([sys.executable, "par.py", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    (tmp_path / "rp-jwks.json").write_text(json.dumps(par_py("jwks")))
    create = re.search(r"(?m)^ +psc-idp clients (create .*--require-par)$", text)[1]
    args = [str(tmp_path / arg) if arg == "rp-jwks.json" else arg  # the CLI runs here
            for arg in shlex.split(create)]
    created = idp.app.test_cli_runner().invoke(clients_cli, [*args, "--json"])
    assert created.exit_code == 0, created.output
    env["CLIENT_ID"] = json.loads(created.output)["client_id"]

    pushed = par_py()
    assert set(query(pushed["authorization_url"])) == {"client_id", "request_uri"}
    back = code_from(browser.with_card(demo_card, pushed["authorization_url"]))
    assert back["state"] == pushed["state"]
    with idp.app.app_context():
        from psc_idp.clients import find

        jwks = find(env["CLIENT_ID"]).jwks
    rp = idp.rp()
    rp.client_id, rp.redirect_uri = env["CLIENT_ID"], "http://localhost:8000/callback"
    key = (tmp_path / "rp-key.pem").read_bytes()
    assertion = _assertion(key, jwks["keys"][0]["kid"], rp.client_id, idp.issuer)
    tokens = rp.exchange(back["code"], verifier=pushed["code_verifier"], auth="none",
                         data_extra={"client_assertion": assertion, "client_assertion_type":
                                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
    assert tokens.status_code == 200, tokens.text
    assert rp.verify_id_token(tokens.json()["id_token"])["nonce"] == pushed["nonce"]


def _assertion(pem: bytes, kid: str, client_id: str, audience: str) -> str:
    import secrets

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    now = int(time.time())
    return jwt.encode({"alg": "RS256", "kid": kid}, {
        "iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60,
        "jti": secrets.token_urlsafe(16)}, RSAKey.import_key(pem))


def test_apache_block_logs_in_shows_userinfo_and_logs_out(idp, browser, demo_card,
                                                         apache_site, apache_backend):
    apache = apache_site(SNIPPETS["psc-site.conf"][1])
    client_id, secret = register(idp, apache.url + "/protected/redirect_uri", apache.url + "/")
    apache.start(apache_env(apache, idp, client_id, secret, apache_backend,
                            idp.issuer + AUTHORIZE))

    to_idp = browser.get(apache.url + "/protected/")
    assert to_idp.headers["Location"].startswith(idp.issuer + AUTHORIZE + "?"), apache.log()
    back = browser.with_card(demo_card, to_idp.headers["Location"])
    assert browser.get(back.headers["Location"]).status_code == 302, apache.log()
    seen = browser.get(apache.url + "/protected/").json()["headers"]
    assert seen["X-Remote-User"] == demo_card.id_nat
    assert "SubjectRefPro" in json.loads(seen["OIDC_userinfo_json"])

    logout = browser.get(apache.url + "/protected/redirect_uri?" + urlencode(
        {"logout": apache.url + "/"}))
    assert logout.headers["Location"].startswith(idp.issuer + LOGOUT + "?"), apache.log()
    assert browser.get(logout.headers["Location"]).headers["Location"] == apache.url + "/"
    again = browser.get(apache.url + "/protected/")
    assert again.headers["Location"].startswith(idp.issuer + AUTHORIZE + "?")
    assert_idp_session_ended(idp, browser)


def test_browser_set_up_names_the_sandbox_files(cards):
    """The Firefox and Chromium steps use the sandbox's real paths, module and token names
    (``cards``: a sandbox built as ``psc-idp sandbox init`` builds it)."""
    text = INTEGRATING.read_text()
    sandbox = cards.hsm.directory.parent  # what the doc calls var/
    assert cards.hsm.conf == sandbox / "softhsm" / "softhsm2.conf"
    assert cards.pki.tls_ca == sandbox / "pki" / "tls-ca.pem"
    assert cards.hsm.conf.is_file() and cards.pki.tls_ca.is_file()
    module = "/usr/lib/softhsm/libsofthsm2.so"
    assert module == SOFTHSM_MODULES[0]
    for step in ("SOFTHSM2_CONF=var/softhsm/softhsm2.conf firefox",
                 "Security Devices…** → **Load", f"module filename `{module}`",
                 "**Authorities** →\n   Import… `var/pki/tls-ca.pem`",
                 f"modutil -dbdir sql:$HOME/.pki/nssdb -add softhsm -libfile {module}",
                 "certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n psc-idp-sandbox -i "
                 "var/pki/tls-ca.pem",
                 "SOFTHSM2_CONF=var/softhsm/softhsm2.conf chromium",
                 "Password for CPS-899700245667"):
        assert step in text, step
    labels = {card.label for card in cards.hsm.cards()}
    assert set(re.findall(r"CPS-[0-9A-Z]+", text)) <= labels


def test_ecps_steps_use_the_real_commands():
    """Activation (codes or QR) and login with the phone simulator: the options the doc
    shows are psc-ecps's and psc-idp's own."""
    from click.testing import CliRunner

    from psc_idp.cli import main as psc_idp
    from psc_idp.ecps.simulator import main as psc_ecps

    text = INTEGRATING.read_text()
    runner = CliRunner()
    helps = {command: runner.invoke(psc_ecps, [command, "--help"]).output
             for command in ("activate", "approve", "pending", "deny")}
    assert "psc-ecps activate --issuer" in text and "psc-ecps activate --qr" in text
    for option in ("--issuer", "--id-nat", "--sms-code", "--email-code", "--ca", "--qr"):
        assert option in text and option in helps["activate"], option
    assert "--code" in helps["approve"] and "psc-ecps approve --code" in text
    assert "psc-ecps pending" in text and "psc-ecps deny" in text
    assert runner.invoke(psc_idp, ["ecps", "outbox", "--help"]).exit_code == 0
    assert "/ecps/activate/codes" in text and "/ecps/activate`" in text


def test_the_ciba_program_asks_and_polls_until_the_phone_approves(idp, browser, demo_card,
                                                                  phone_factory, tmp_path):
    """``ciba.py`` as written: it shows the binding message, the professional picks it on
    the phone (the ``psc-ecps`` simulator), the program gets tokens and userinfo; a refusal
    ends its poll with ``access_denied``."""
    from .ecps_support import activate_with_card

    phone = phone_factory("phone")
    activate_with_card(idp, browser, demo_card, phone)
    client_id, secret = register(idp, "https://rp.example/cb", "https://rp.example/out",
                                 backchannel_token_delivery_mode="poll")
    (tmp_path / "ciba.py").write_text(SNIPPETS["ciba.py"][1])
    (tmp_path / "var" / "pki").mkdir(parents=True)
    shutil.copy(idp.ca, tmp_path / "var" / "pki" / "tls-ca.pem")
    env = {"PATH": os.environ.get("PATH", ""), "ISSUER": idp.issuer, "CLIENT_ID": client_id,
           "CLIENT_SECRET": secret, "ID_NAT": demo_card.id_nat, "BINDING_MESSAGE": "42"}

    def run(decision: list[str]) -> dict:
        with subprocess.Popen([sys.executable, "ciba.py"], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as program:
            assert program.stdout.readline() == "Approve on your phone: pick 42\n", \
                program.stderr.read()
            phone.ok(*decision)
            out, err = program.communicate(timeout=60)
            assert program.returncode == 0, err
        return json.loads(out)

    assert run(["approve", "--code", "42"])["userinfo"]["SubjectNameID"] == demo_card.id_nat
    assert run(["deny"]) == {"error": "access_denied"}


def test_the_exchange_script_gets_a_certificate_bound_token_for_the_api(
        keys_dir, database_url, cards, smtp_server, card_curl, demo_card, tmp_path):
    """The token-exchange block as written: an EDC-like client with a certificate minted by
    ``psc-idp sandbox org-cert`` and an audience ops allowed exchanges a professional's
    access token (an application's, after a card login) at the mTLS token alias."""
    from psc_idp.keys import jws

    from .plugins.idp import running_idp
    from .support import Browser
    from .test_cli import psc_idp
    from .test_mtls import mtls_settings

    var = sandbox_layout(cards, tmp_path)
    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     **mtls_settings(cards.pki)) as idp:
        client_id = f"doc-edc-{free_port()}"
        minted = psc_idp("sandbox", "org-cert", str(var), "--client-id", client_id,
                         "--finess", "750000001", "--json", cwd=tmp_path)
        assert minted.returncode == 0, minted.stderr
        org = json.loads(minted.stdout)
        with idp.app.app_context():
            create_client(name="doc edc", client_id=client_id,
                          redirect_uris=["https://rp.example/cb"],
                          auth_method="tls_client_auth",
                          tls_client_auth_subject_dn=org["subject_dn"],
                          token_exchange_audiences=["https://api.example/fhir"])
        app = idp.rp()
        code = code_from(Browser(idp.ca, card_curl).with_card(
            demo_card, app.authorization_url()))["code"]
        subject_token = app.exchange(code).json()["access_token"]
        (tmp_path / "exchange.sh").write_text(SNIPPETS["exchange.sh"][1])
        env = {"PATH": os.environ.get("PATH", ""), "ISSUER": idp.issuer,
               "CLIENT_ID": client_id, "ORG": org["label"], "SUBJECT_TOKEN": subject_token,
               "AUDIENCE": "https://api.example/fhir"}
        done = subprocess.run(["sh", "exchange.sh"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr + done.stdout
        with idp.app.app_context():
            claims = jws.decode(json.loads(done.stdout)["access_token"],
                                idp.app.extensions["psc_idp"].keys.key_set())
        assert claims["aud"] == "https://api.example/fhir"
        assert claims["SubjectNameID"] == demo_card.id_nat and "x5t#S256" in claims["cnf"]
