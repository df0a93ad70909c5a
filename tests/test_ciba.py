"""CIBA (OpenID CIBA Core 1.0) over real HTTPS, on both databases: a client asks for a
professional by idNat, the professional approves on their e-CPS phone (the ``psc-ecps``
simulator) picking the client's binding message among three codes, the client polls the
token endpoint — and every way it can go wrong: a wrong pick, a refusal, expiry, polling too
fast, a replayed or another client's ``auth_req_id``, an unknown idNat that must look like
any other. Ping mode notifies a real HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest
import requests

from psc_idp.ciba.models import CibaRequest
from psc_idp.ecps.models import LoginRequest
from psc_idp.extensions import db

from .ecps_support import activate_with_card
from .ports import free_port

KIT = "899700245667"
#: a well-formed RPPS idNat (Luhn) that the demo directory does not know
UNKNOWN = "810000000009"
CIBA = "urn:openid:params:grant-type:ciba"


@pytest.fixture
def enrolled(idp, browser, demo_card, phone_factory):
    phone = phone_factory("phone")
    activate_with_card(idp, browser, demo_card, phone)
    return phone


def ciba_client(idp, **kwargs):
    return idp.rp(backchannel_token_delivery_mode="poll", **kwargs)


def ask(rp, **params):
    data = {"scope": "openid scope_all", "login_hint": KIT, "binding_message": "42",
            "acr_values": "eidas1", **params}
    return rp.post("backchannel_authentication_endpoint",
                   {k: v for k, v in data.items() if v is not None})


def poll(rp, auth_req_id: str, wait: float = 1.05):
    time.sleep(wait)  # interval: 1 s
    return rp.post("token_endpoint", {"grant_type": CIBA, "auth_req_id": auth_req_id})


def asked(idp, rp, **params) -> str:
    answer = ask(rp, **params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"auth_req_id", "expires_in", "interval"}
    assert body["interval"] == 1 and body["expires_in"] == int(params.get(
        "requested_expiry") or 120)
    assert answer.headers["Cache-Control"] == "no-store"
    return body["auth_req_id"]


def test_discovery_advertises_ciba(idp):
    meta = requests.get(idp.issuer + "/.well-known/openid-configuration", verify=idp.ca,
                        timeout=10).json()
    assert meta["backchannel_authentication_endpoint"] == \
        idp.issuer + "/protocol/openid-connect/ext/ciba/auth"
    assert meta["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
    assert meta["backchannel_user_code_parameter_supported"] is False
    assert CIBA in meta["grant_types_supported"]


def test_mobile_approved_on_the_phone(idp, enrolled):
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp)
    pending = poll(rp, auth_req_id, wait=0)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    [request] = enrolled.pending()
    assert request["client"] == rp_name(idp, rp) and "42" in request["candidates"]
    assert len(request["candidates"]) == 3
    assert "approved" in enrolled.ok("approve", "--code", "42")
    tokens = poll(rp, auth_req_id)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    claims = pyjwt.decode(body["id_token"], options={"verify_signature": False})
    assert claims["sub"].endswith(":" + KIT) and claims["aud"] == rp.client_id
    assert claims["authMode"] == "MOBILE" and "hwk" in claims["amr"] and claims["sid"]
    info = rp.userinfo(body["access_token"])
    assert info.status_code == 200 and info.json()["SubjectNameID"] == KIT
    again = poll(rp, auth_req_id)  # an approval issues tokens once
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def rp_name(idp, rp) -> str:
    from psc_idp.oidc.models import Client

    with idp.app.app_context():
        return db.session.get(Client, rp.client_id).name


def ciba_counts(idp) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(idp.ops_url + "/metrics", timeout=10).text
    return {s.labels["outcome"]: s.value for family in text_string_to_metric_families(text)
            if family.name == "psc_idp_ciba" for s in family.samples
            if s.name == "psc_idp_ciba_total"}


def test_ciba_is_counted_for_operators(idp, enrolled):
    rp = ciba_client(idp)
    before = ciba_counts(idp)
    asked(idp, rp)
    enrolled.ok("approve", "--code", "42")
    asked(idp, rp, login_hint=UNKNOWN)
    after = ciba_counts(idp)
    grown = {outcome: after[outcome] - before.get(outcome, 0) for outcome in after}
    assert grown == {"requested": 1, "approved": 1, "not_available": 1, "rate_limited": 0,
                     "denied": 0, "ping_delivered": 0, "ping_retry": 0, "ping_failed": 0}


def test_mobile_wrong_code_is_access_denied(idp, enrolled):
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp)
    [request] = enrolled.pending()
    wrong = next(code for code in request["candidates"] if code != "42")
    code, output = enrolled.run("approve", "--code", wrong)
    assert code != 0 and "wrong" in output.lower()
    denied = poll(rp, auth_req_id)
    assert denied.status_code == 400 and denied.json()["error"] == "access_denied"


def test_mobile_denied(idp, enrolled):
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp)
    enrolled.ok("deny")
    denied = poll(rp, auth_req_id)
    assert denied.status_code == 400 and denied.json()["error"] == "access_denied"
    assert enrolled.pending() == []


def test_expired_request(idp, enrolled):
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp, requested_expiry="1")
    expired = poll(rp, auth_req_id, wait=2.1)  # epoch seconds: expired 1 to 2 s ago
    assert expired.status_code == 400 and expired.json()["error"] == "expired_token"
    code, output = enrolled.run("approve", "--code", "42")  # too late on the phone too
    assert code != 0


def test_polling_faster_than_the_interval_slows_down(idp, enrolled):
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp)
    assert poll(rp, auth_req_id, wait=0).json()["error"] == "authorization_pending"
    fast = poll(rp, auth_req_id, wait=0)
    assert fast.status_code == 400 and fast.json()["error"] == "slow_down"
    assert poll(rp, auth_req_id).json()["error"] == "authorization_pending"


def test_another_clients_auth_req_id_is_refused(idp, enrolled):
    rp, other = ciba_client(idp), ciba_client(idp)
    auth_req_id = asked(idp, rp)
    enrolled.ok("approve", "--code", "42")
    stolen = poll(other, auth_req_id)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert poll(rp, auth_req_id).status_code == 200  # the owner's request is untouched


def test_unknown_professional_looks_like_any_other(idp, enrolled):
    """No enumeration: the same answer for an unknown idNat, pending until it expires; no
    phone sees it."""
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp, login_hint=UNKNOWN, requested_expiry="2")
    assert poll(rp, auth_req_id, wait=0).json()["error"] == "authorization_pending"
    assert enrolled.pending() == []
    assert poll(rp, auth_req_id, wait=3.1).json()["error"] == "expired_token"
    with idp.app.app_context():
        row = db.session.scalars(db.select(CibaRequest).where(
            CibaRequest.id_nat == UNKNOWN)).one()
        assert row.real is False
        decoy = db.session.get(LoginRequest, row.login_request_id)
        assert decoy is not None and decoy.real is False


def test_a_professional_without_a_phone_looks_like_any_other(idp):
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp)
    assert poll(rp, auth_req_id, wait=0).json()["error"] == "authorization_pending"


@pytest.mark.parametrize("params, error", [
    ({"binding_message": "4"}, "invalid_binding_message"),
    ({"binding_message": None}, "invalid_binding_message"),
    ({"binding_message": "<b>"}, "invalid_binding_message"),
    ({"login_hint": None}, "invalid_request"),
    ({"login_hint": "899700245668"}, "invalid_request"),  # a typo: check digit
    ({"id_token_hint": "not.a.token"}, "invalid_request"),
    ({"login_hint_token": "x"}, "invalid_request"),
    ({"channel": "SMS"}, "invalid_request"),
    ({"requested_expiry": "-5"}, "invalid_request"),
    ({"scope": "unknown"}, "invalid_scope"),
])
def test_malformed_requests(idp, params, error):
    answer = ask(ciba_client(idp), **params)
    assert answer.status_code == 400 and answer.json()["error"] == error, answer.text


def test_client_authentication_and_registration(idp):
    plain = idp.rp()  # not registered for CIBA
    refused = ask(plain)
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    rp = ciba_client(idp)
    rp.client_secret = "wrong"
    denied = ask(rp)
    assert denied.status_code == 401 and denied.json()["error"] == "invalid_client"


def test_id_token_hint_names_the_professional(idp, enrolled):
    """An ID token the client received earlier (expired or not) names the professional."""
    rp = ciba_client(idp)
    auth_req_id = asked(idp, rp)
    enrolled.ok("approve", "--code", "42")
    id_token = poll(rp, auth_req_id).json()["id_token"]
    again = asked(idp, rp, login_hint=None, id_token_hint=id_token, binding_message="17")
    [request] = enrolled.pending()
    assert "17" in request["candidates"]
    enrolled.ok("approve", "--code", "17")
    assert poll(rp, again).status_code == 200
    other = ciba_client(idp)  # an ID token issued to another client is no hint
    refused = ask(other, login_hint=None, id_token_hint=id_token)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"


class Receiver:
    """A ping-mode client's notification endpoint (a real HTTP server)."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.headers.get("Authorization"), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ciba-notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, seconds: float = 10) -> list:
        deadline = time.time() + seconds
        while not self.received and time.time() < deadline:
            time.sleep(0.1)
        return self.received


def test_ping_mode_notifies_the_client(idp, enrolled):
    receiver = Receiver()
    try:
        rp = idp.rp(backchannel_token_delivery_mode="ping",
                    backchannel_client_notification_endpoint=receiver.url)
        missing = ask(rp)  # ping needs the client's notification token
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
        auth_req_id = asked(idp, rp, client_notification_token="rp-bearer-123")
        assert receiver.received == []
        enrolled.ok("approve", "--code", "42")
        [(authorization, body)] = receiver.wait()
        assert authorization == "Bearer rp-bearer-123" and body == {"auth_req_id": auth_req_id}
        tokens = poll(rp, auth_req_id, wait=0)
        assert tokens.status_code == 200 and "access_token" in tokens.json()
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


# --- registration ----------------------------------------------------------------------------

def test_ciba_registration_through_every_door(idp):
    from psc_idp.cli import main

    from .test_attacks_clients import Doors

    cli = idp.app.test_cli_runner()
    created = cli.invoke(main, ["clients", "create", "--name", "ciba cli", "--redirect-uri",
                                "https://rp.example/cb", "--ciba", "poll", "--json"])
    assert created.exit_code == 0, created.output
    described = json.loads(created.stdout)
    assert described["backchannel_token_delivery_mode"] == "poll"
    assert CIBA in described["grant_types"]
    refused = cli.invoke(main, ["clients", "update", described["client_id"], "--ciba", "ping"])
    assert refused.exit_code == 1 and "backchannel_client_notification_endpoint" in \
        refused.output
    ping = cli.invoke(main, ["clients", "update", described["client_id"], "--ciba", "ping",
                             "--ciba-notification-endpoint", "https://rp.example/ciba",
                             "--json"])
    assert json.loads(ping.stdout)["backchannel_client_notification_endpoint"] == \
        "https://rp.example/ciba"
    off = cli.invoke(main, ["clients", "update", described["client_id"], "--ciba", "off",
                            "--json"])
    assert json.loads(off.stdout)["backchannel_token_delivery_mode"] is None
    assert CIBA not in json.loads(off.stdout)["grant_types"]

    doors = Doors(idp)
    registered = doors.register({"redirect_uris": ["https://rp.example/cb"],
                                 "grant_types": ["authorization_code", CIBA]})
    assert registered.status_code == 201, registered.text
    assert registered.json()["backchannel_token_delivery_mode"] == "poll"
    public = doors.register({"redirect_uris": ["https://rp.example/cb"],
                             "token_endpoint_auth_method": "none",
                             "backchannel_token_delivery_mode": "poll"})
    assert public.status_code == 400 and "CIBA" in public.json()["error_description"]
    admin = doors.admin("POST", "/clients", json={
        "client_name": "admin ciba", "redirect_uris": ["https://rp.example/cb"],
        "backchannel_token_delivery_mode": "ping"})
    assert admin.status_code == 400
    assert "backchannel_client_notification_endpoint" in admin.text


def test_pushes_are_rate_limited_per_client_without_telling_who_exists(
        keys_dir, database_url, cards, smtp_server, tmp_path):
    from .plugins.idp import running_idp

    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     ecps_rate_per_id_nat=2) as live:
        rp = ciba_client(live)
        for hint in (KIT, UNKNOWN):
            answers = [ask(rp, login_hint=hint) for _ in range(3)]
            assert [a.status_code for a in answers] == [200, 200, 429]
            assert answers[-1].json()["error"] == "slow_down"
        assert ask(ciba_client(live)).status_code == 200  # another client's budget


def test_hostile_inputs_never_fail_the_server(idp):
    """Garbage in any parameter gets a JSON error, never a 5xx."""
    rp = ciba_client(idp)
    values = ["", "\x00", "é" * 5000, "%ff", "' OR 1=1 --", "8" * 41, "{}", "\ud7ff"]
    for name in ("scope", "login_hint", "binding_message", "requested_expiry", "channel",
                 "client_notification_token", "id_token_hint", "acr_values"):
        for value in values:
            answer = ask(rp, **{name: value})
            assert answer.status_code < 500, (name, value, answer.text)
            assert answer.headers["Content-Type"].startswith("application/json")
    for auth_req_id in values + ["a" * 101]:
        answer = rp.post("token_endpoint", {"grant_type": CIBA, "auth_req_id": auth_req_id})
        assert answer.status_code == 400
        assert answer.json()["error"] in ("invalid_grant", "invalid_request")  # "" is missing
