"""The CIBA card channel over real HTTPS (psc.md §7): the professional answers a
decoupled sign-in with their CPS card in ``psc-card``, which signs inside the SoftHSM
token; psc-idp validates the card exactly as a card login does and the signature over its
challenge. Refused: the revoked, expired, untrusted and unknown cards, a signature by
another card, another card's request, a decoy; garbage is a 4xx, never a 5xx."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jwt as pyjwt
import pytest
import requests
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from psc_idp import create_app
from psc_idp.audit import AuditEvent
from psc_idp.ciba import service
from psc_idp.ciba.card_messages import decision_message, list_message
from psc_idp.ciba.card_tool import main as psc_card_main
from psc_idp.ciba.models import CibaRequest
from psc_idp.clients import find
from psc_idp.extensions import db
from psc_idp.sandbox.cards import USER_PIN

from .plugins.apache import doc_snippets
from .plugins.idp import base_settings, running_idp

CIBA = "urn:openid:params:grant-type:ciba"
KIT = "CPS-899700245667"
JEAN = "CPS-899700218896"

pytestmark = pytest.mark.usefixtures("no_server_errors")


def card_request(idp, rp, id_nat: str, *, binding: str = "42") -> tuple[str, str]:
    """``rp`` asks for ``id_nat`` on the CARD channel (``/ext/ciba/auth``): its
    ``auth_req_id`` and the request's public id."""
    answer = rp.post("backchannel_authentication_endpoint", {
        "scope": "openid scope_all", "acr_values": "eidas1", "login_hint": id_nat,
        "binding_message": binding, "channel": "CARD"})
    assert answer.status_code == 200, answer.text
    auth_req_id = answer.json()["auth_req_id"]
    with idp.app.app_context():
        return auth_req_id, service.find(auth_req_id).id


def decoy(idp, rp, id_nat: str) -> str:
    """The decoy ``/ext/ciba/auth`` writes for an idNat that cannot be asked, here for one
    whose card could list it."""
    with idp.app.app_context():
        _, row = service.new(find(rp.client_id), id_nat, "CARD", "openid scope_all",
                             real=False, lifetime=120, binding_message="42",
                             delivery="poll", notification_token=None, network="test")
        db.session.commit()
        return row.id


def ciba_client(idp):
    return idp.rp(backchannel_token_delivery_mode="poll")


def poll(rp, auth_req_id: str) -> requests.Response:
    time.sleep(1.05)  # the interval: 1 s
    return rp.post("token_endpoint", {"grant_type": CIBA, "auth_req_id": auth_req_id})


def stored(idp, request_id: str) -> CibaRequest:
    with idp.app.app_context():
        row = db.session.get(CibaRequest, request_id)
        db.session.expunge(row)
        return row


def events(idp, name: str) -> list[AuditEvent]:
    with idp.app.app_context():
        return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)).all()


def psc_card_command() -> list[str]:
    """The installed console script, or the same module run by this interpreter."""
    script = Path(sys.executable).with_name("psc-card")
    return [str(script)] if script.exists() else [sys.executable, "-m",
                                                   "psc_idp.ciba.card_tool"]


def psc_card(cards, idp, command: str, *args: str, token: str = KIT, pin: str = USER_PIN):
    """``psc-card COMMAND`` with the card ``token`` in its SoftHSM reader."""
    argv = [*psc_card_command(), command, "--issuer", idp.issuer, "--token", token,
            "--pin", pin, "--ca-file", idp.ca, *args]
    done = subprocess.run(argv, env=cards.hsm.env(), capture_output=True, text=True,
                          timeout=120, check=False)
    return done.returncode, done.stdout, done.stderr


def signed_by(cards, token: str, message: str) -> tuple[str, str]:
    """(signature, certificate PEM) of ``message`` by the card ``token``, in its token."""
    script = ("import sys\nfrom psc_idp.ciba.card_tool import Card, default_module\n"
              "with Card(default_module(), sys.argv[1], sys.argv[2]) as card:\n"
              "    print(card.sign(sys.argv[3]))\n    print(card.certificate, end='')\n")
    done = subprocess.run([sys.executable, "-c", script, token, USER_PIN, message],
                          env=cards.hsm.env(), capture_output=True, text=True, timeout=120,
                          check=True)
    signature, _, certificate = done.stdout.partition("\n")
    return signature, certificate


def api(idp, endpoint: str, body) -> requests.Response:
    kwargs = {"json": body} if not isinstance(body, bytes) else {
        "data": body, "headers": {"Content-Type": "application/json"}}
    return requests.post(f"{idp.issuer}/ciba/card/{endpoint}", verify=idp.ca, timeout=30,
                         **kwargs)


def fingerprint(card) -> str:
    certificate = x509.load_pem_x509_certificate(Path(card.certificate).read_bytes())
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


# --- approving and denying ------------------------------------------------------------------

def test_the_card_approves_what_it_shows(idp, cards):
    rp = ciba_client(idp)
    auth_req_id, request_id = card_request(idp, rp, cards[KIT].id_nat, binding="42")
    pending = poll(rp, auth_req_id)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

    code, out, err = psc_card(cards, idp, "pending")
    assert code == 0, err
    assert request_id in out and "message 42" in out and "rp " in out

    code, out, err = psc_card(cards, idp, "approve", "--yes")
    assert code == 0, err
    with idp.app.app_context():
        name = find(rp.client_id).name
    assert f"Application: {name}\nMessage: 42\nRequest: {request_id}" in out
    assert out.rstrip().endswith(f"request {request_id}: approved")
    row = stored(idp, request_id)
    assert (row.status, row.method, row.method_detail) == ("approved", "card",
                                                           fingerprint(cards[KIT]))
    assert [e.id_nat for e in events(idp, "ciba.card.listed")] == [cards[KIT].id_nat] * 2
    assert [e.detail["request"] for e in events(idp, "ciba.approved")] == [request_id]

    tokens = poll(rp, auth_req_id)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["sub"].endswith(":" + cards[KIT].id_nat) and claims["aud"] == rp.client_id
    assert claims["authMode"] == "CARD" and set(claims["amr"]) == {"sc", "pin", "mfa"}
    assert rp.userinfo(body["access_token"]).json()["SubjectNameID"] == cards[KIT].id_nat
    again = poll(rp, auth_req_id)  # an approval issues tokens once
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    # answered: nothing is pending any more, a second answer finds nothing
    assert psc_card(cards, idp, "pending")[1].strip() == "no pending request"
    code, _, err = psc_card(cards, idp, "approve", "--yes", "--request", request_id)
    assert code == 1 and err == f"psc-card: error: request {request_id} is not pending " \
                                "for this card\n"


def test_the_card_denies(idp, cards):
    rp = ciba_client(idp)
    auth_req_id, request_id = card_request(idp, rp, cards[KIT].id_nat)
    code, out, err = psc_card(cards, idp, "approve", "--deny", "--yes")
    assert code == 0, err
    assert out.rstrip().endswith(f"request {request_id}: denied")
    assert stored(idp, request_id).status == "denied"
    denied = poll(rp, auth_req_id)
    assert denied.status_code == 400 and denied.json()["error"] == "access_denied"


def test_nothing_is_sent_without_confirmation(idp, cards):
    _, request_id = card_request(idp, ciba_client(idp), cards[KIT].id_nat)
    argv = [*psc_card_command(), "approve", "--issuer", idp.issuer, "--token", KIT,
            "--pin", USER_PIN, "--ca-file", idp.ca]
    done = subprocess.run(argv, env=cards.hsm.env(), input="n\n", capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.endswith("psc-card: error: not confirmed: nothing was sent\n")
    assert stored(idp, request_id).status == "pending"


def test_several_requests_need_one_chosen(idp, cards):
    rp = ciba_client(idp)
    _, first = card_request(idp, rp, cards[KIT].id_nat, binding="11")
    _, second = card_request(idp, rp, cards[KIT].id_nat, binding="22")
    code, _, err = psc_card(cards, idp, "approve", "--yes")
    assert code == 1 and err.endswith("psc-card: error: 2 requests are pending: choose one "
                                      "with --request\n")
    code, out, err = psc_card(cards, idp, "approve", "--yes", "--request", second)
    assert code == 0 and "Message: 22" in out, err
    assert [stored(idp, r).status for r in (first, second)] == ["pending", "approved"]


# --- refused ----------------------------------------------------------------------------------

@pytest.mark.parametrize("token, reason, message", [
    ("CPS-REVOKED", "revoked", "Your CPS card has been revoked."),
    ("CPS-EXPIRED", "expired", "Your CPS card has expired."),
    ("CPS-UNTRUSTED", "untrusted", "This card was not issued by an authority this service "
                                   "trusts."),
    ("CPS-UNKNOWN", "unknown_professional", "This card belongs to no active professional "
                                            "in the directory."),
])
def test_refused_cards_see_nothing(idp, cards, token, reason, message):
    _, request_id = card_request(idp, ciba_client(idp), cards[token].id_nat)
    for command in ("pending", "approve"):
        code, out, err = psc_card(cards, idp, command, "--yes", token=token) \
            if command == "approve" else psc_card(cards, idp, command, token=token)
        assert (code, out, err) == (1, "", f"psc-card: error: {reason}: {message}\n")
    assert stored(idp, request_id).status == "pending"
    refused = events(idp, "ciba.card.refused")
    assert refused and {e.detail["reason"] for e in refused} == {reason}


def test_a_refused_card_cannot_decide_with_a_known_challenge(idp, cards):
    """Even knowing the request and its challenge, a revoked card's signature decides
    nothing: the certificate is validated on every call."""
    _, request_id = card_request(idp, ciba_client(idp), cards["CPS-REVOKED"].id_nat)
    challenge = stored(idp, request_id).challenge
    signature, certificate = signed_by(cards, "CPS-REVOKED",
                                       decision_message(request_id, challenge, "approve"))
    answer = api(idp, "decide", {"certificate": certificate, "request": request_id,
                                 "decision": "approve", "signature": signature})
    assert answer.status_code == 403 and answer.json()["error"] == "revoked"
    assert stored(idp, request_id).status == "pending"


def test_a_signature_by_another_card_is_refused(idp, cards):
    _, request_id = card_request(idp, ciba_client(idp), cards[KIT].id_nat)
    kit_certificate = Path(cards[KIT].certificate).read_text()
    nonce = api(idp, "nonce", {}).json()["nonce"]
    signature, _ = signed_by(cards, JEAN, list_message(nonce))
    answer = api(idp, "pending", {"certificate": kit_certificate, "nonce": nonce,
                                  "signature": signature})
    assert answer.status_code == 403 and answer.json()["error"] == "invalid_signature"

    challenge = stored(idp, request_id).challenge
    signature, _ = signed_by(cards, JEAN, decision_message(request_id, challenge, "approve"))
    answer = api(idp, "decide", {"certificate": kit_certificate, "request": request_id,
                                 "decision": "approve", "signature": signature})
    assert answer.status_code == 403 and answer.json()["error"] == "invalid_signature"

    # KIT's own signature of a denial does not stand for an approval
    signature, _ = signed_by(cards, KIT, decision_message(request_id, challenge, "deny"))
    answer = api(idp, "decide", {"certificate": kit_certificate, "request": request_id,
                                 "decision": "approve", "signature": signature})
    assert answer.status_code == 403 and answer.json()["error"] == "invalid_signature"
    assert stored(idp, request_id).status == "pending"


def test_another_practitioners_request_is_unknown(idp, cards):
    _, request_id = card_request(idp, ciba_client(idp), cards[KIT].id_nat)
    challenge = stored(idp, request_id).challenge
    signature, certificate = signed_by(cards, JEAN,
                                       decision_message(request_id, challenge, "approve"))
    answer = api(idp, "decide", {"certificate": certificate, "request": request_id,
                                 "decision": "approve", "signature": signature})
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_request"
    assert psc_card(cards, idp, "pending", token=JEAN)[1].strip() == "no pending request"
    assert stored(idp, request_id).status == "pending"


def test_a_decoy_is_never_listed_nor_decided(idp, cards):
    rp = ciba_client(idp)
    auth_req_id, unknown = card_request(idp, rp, cards["CPS-UNKNOWN"].id_nat)
    assert stored(idp, unknown).real is False  # the client cannot tell
    assert poll(rp, auth_req_id).json()["error"] == "authorization_pending"

    decoy_id = decoy(idp, rp, cards[KIT].id_nat)
    assert psc_card(cards, idp, "pending", "--json")[1].strip() == "[]"
    challenge = stored(idp, decoy_id).challenge
    signature, certificate = signed_by(cards, KIT,
                                       decision_message(decoy_id, challenge, "approve"))
    answer = api(idp, "decide", {"certificate": certificate, "request": decoy_id,
                                 "decision": "approve", "signature": signature})
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_request"
    assert stored(idp, decoy_id).status == "pending"


def test_a_nonce_is_this_servers_and_fresh(idp, cards):
    certificate = Path(cards[KIT].certificate).read_text()
    nonce = api(idp, "nonce", {}).json()
    assert nonce["expires_in"] == 60
    forged = nonce["nonce"][:-2] + ("AA" if not nonce["nonce"].endswith("AA") else "BB")
    signature, _ = signed_by(cards, KIT, list_message(forged))
    answer = api(idp, "pending", {"certificate": certificate, "nonce": forged,
                                  "signature": signature})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_nonce"


def test_wrong_pin_missing_card_and_bad_ca(idp, cards, tmp_path):
    assert psc_card(cards, idp, "pending", pin="0000") == (
        1, "", "psc-card: error: wrong PIN\n")
    code, _, err = psc_card(cards, idp, "pending", token="CPS-NOWHERE")
    assert code == 1 and err == ("psc-card: error: no card 'CPS-NOWHERE' in a reader "
                                 "(PKCS#11 token not found)\n")
    code, _, err = psc_card(cards, idp, "approve", "--yes")
    assert code == 1 and err == "psc-card: error: no pending request for this card\n"
    not_a_ca = tmp_path / "not-a-ca.pem"
    not_a_ca.write_text("junk")
    code, _, err = psc_card(cards, idp, "pending", "--ca-file", str(not_a_ca))
    assert code == 1 and err.startswith(f"psc-card: error: cannot read the CA file {not_a_ca}")


def test_only_the_issuer_origin_serves_it(idp):
    path = idp.issuer.split("/", 3)[3]
    answer = requests.post(f"{idp.card_url}/{path}/ciba/card/nonce", verify=idp.ca, timeout=10)
    assert answer.status_code == 404
    assert api(idp, "nonce", {}).status_code == 200


@pytest.mark.parametrize("endpoint, body", [
    ("pending", b"not json"), ("pending", b"[]"), ("pending", b"{}"),
    ("pending", {"certificate": "x", "nonce": "n", "signature": "!" * 20}),
    ("pending", {"certificate": 1, "nonce": None, "signature": []}),
    ("pending", {"certificate": "x\u0000", "nonce": "a", "signature": "A" * 20}),
    ("pending", {"certificate": "x", "nonce": "a", "signature": "A" * 20, "more": 1}),
    ("decide", {"certificate": "x", "request": "r", "decision": "maybe",
                "signature": "A" * 20}),
    ("decide", {"certificate": "x", "request": "a:b", "decision": "approve",
                "signature": "A" * 20}),
    ("decide", b'{"certificate": "' + b"A" * 20000 + b'"}'),
    ("decide", b"[" * 5000),
])
def test_garbage_is_a_4xx(idp, endpoint, body):
    answer = api(idp, endpoint, body)
    assert 400 <= answer.status_code < 500
    assert answer.json()["error"] in {"invalid_request"}


def test_a_garbage_certificate_is_a_refused_card(idp, cards):
    nonce = api(idp, "nonce", {}).json()["nonce"]
    answer = api(idp, "pending", {"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n",
                                  "nonce": nonce, "signature": "A" * 342})
    assert answer.status_code == 403 and answer.json()["error"] == "malformed"
    key_only = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()
    answer = api(idp, "pending", {"certificate": key_only, "nonce": nonce,
                                  "signature": "A" * 342})
    assert answer.status_code == 403 and answer.json()["error"] == "malformed"


def test_calls_are_limited_per_network(keys_dir, sqlite_template, cards, smtp_server,
                                       tmp_path):
    path = tmp_path / "idp.sqlite3"
    shutil.copy(sqlite_template, path)
    with running_idp(keys_dir, f"sqlite:///{path}", cards, smtp_server, tmp_path,
                     ciba_card_rate_per_network=2) as live:
        # five calls span at most one of the limit's 10-minute windows' ends
        answers = [api(live, "pending", {}) for _ in range(5)]
        statuses = [a.status_code for a in answers]
        assert statuses[0] == 400 and 429 in statuses and set(statuses) == {400, 429}
        assert answers[statuses.index(429)].json()["error"] == "too_many_attempts"
        assert {e.detail["reason"] for e in events(live, "ciba.card.rate_limited")} == {
            "ciba-card-network"}


def test_an_unknown_revocation_status_is_a_retry(keys_dir, database_url, cards):
    """Without a CRL for its issuer, a card's revocation cannot be checked: the tool is told
    to retry (503), not that the card is refused."""
    pki = cards.pki
    app = create_app(base_settings(keys_dir, database_url,
                                   card_trust_anchors=[str(pki.trust_anchor)],
                                   card_intermediates=[str(pki.issuing_ca)]))
    http, base = app.test_client(), "https://localhost:5443/auth/realms/esante-wallet"
    nonce = http.post(f"{base}/ciba/card/nonce").get_json()["nonce"]
    answer = http.post(f"{base}/ciba/card/pending", json={
        "certificate": Path(cards[KIT].certificate).read_text(), "nonce": nonce,
        "signature": "A" * 342})
    assert answer.status_code == 503 and answer.get_json()["error"] == "revocation_unknown"
    with app.app_context():
        db.engine.dispose()


def test_the_docs_ciba_program_gets_tokens_when_the_card_approves(idp, cards, tmp_path):
    """docs/integrating.md's ``ciba.py`` as written, with ``CHANNEL=CARD``: ``psc-card``
    approves, the program polls its way to the userinfo; a denial ends it with
    ``access_denied``."""
    rp = ciba_client(idp)
    (tmp_path / "ciba.py").write_text(doc_snippets()["ciba.py"][1])
    (tmp_path / "var" / "pki").mkdir(parents=True)
    shutil.copy(idp.ca, tmp_path / "var" / "pki" / "tls-ca.pem")
    env = {"PATH": os.environ.get("PATH", ""), "ISSUER": idp.issuer,
           "CLIENT_ID": rp.client_id, "CLIENT_SECRET": rp.client_secret,
           "ID_NAT": cards[KIT].id_nat, "BINDING_MESSAGE": "42", "CHANNEL": "CARD"}

    def run(*decision: str) -> dict:
        with subprocess.Popen([sys.executable, "ciba.py"], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as program:
            assert "42" in program.stdout.readline(), program.stderr.read()
            code, out, err = psc_card(cards, idp, "approve", "--yes", *decision)
            assert code == 0 and "Message: 42" in out, err
            out, err = program.communicate(timeout=60)
            assert program.returncode == 0, err
        return json.loads(out)

    assert run()["userinfo"]["SubjectNameID"] == cards[KIT].id_nat
    assert run("--deny") == {"error": "access_denied"}


def test_the_readme_shows_real_psc_card_commands():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    helps = {command: CliRunner().invoke(psc_card_main, [command, "--help"]).output
             for command in ("pending", "approve")}
    for line in readme.splitlines():
        if line.strip().startswith("psc-card "):
            command, *words = line.split()[1:]
            options = [w for w in words if w.startswith("--")]
            assert options and all(o in helps[command] for o in options), line
    for option in ("--yes", "--deny", "--request", "--pin", "--module"):
        assert f"`{option}" in readme and option in helps["approve"]
