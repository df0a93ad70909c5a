"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0) as relying parties see it:
real HTTP receivers get a logout token, checked with PyJWT against the published JWKS,
when a session ends — RP-initiated logout, the console's or a direct ``end_session``, a
directory deactivation — every client of the session that registered a URI, no other;
a receiver down at first gets it when it comes back (the sender driven with its clock);
the demo relying party ends its session on a valid token and refuses a tampered one."""

from __future__ import annotations

import json
import queue
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from psc_idp import audit
from psc_idp.clients import RegistrationError, create_client, update_client, validate
from psc_idp.extensions import db
from psc_idp.oidc import backchannel, revocation
from psc_idp.oidc.models import BackchannelLogout, Client, LoginSession, now
from relying_party_demo import create_app as create_demo

from .plugins.idp import free_port, running_idp
from .support import code_from

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A relying party's back-channel logout endpoint: a threaded http.server keeping the
    logout tokens it receives; answers ``status``."""

    def __init__(self, port: int | None = None, status: int = 200, delay: float = 0):
        self.port, self.status, self.tokens = port or free_port(), status, queue.Queue()
        self.delay = delay
        self.server = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel-logout"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                receiver.tokens.put((self.headers.get("Content-Type"),
                                     form.get("logout_token", [None])[0]))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def token(self, timeout: float = 15) -> str:
        content_type, token = self.tokens.get(timeout=timeout)
        assert content_type == "application/x-www-form-urlencoded"
        return token


@pytest.fixture
def receivers():
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]
    yield make
    for receiver in made:
        receiver.stop()


def verify(live, rp, token: str) -> dict:
    """The logout token as a relying party checks it: PyJWT, the IdP's JWKS over TLS."""
    assert jwt.get_unverified_header(token)["typ"] == "logout+jwt"
    jwks = jwt.PyJWKClient(rp.url("jwks_uri"),
                           ssl_context=ssl.create_default_context(cafile=live.ca))
    claims = jwt.decode(token, jwks.get_signing_key_from_jwt(token), algorithms=["RS256"],
                        audience=rp.client_id, issuer=live.issuer,
                        options={"require": ["iss", "aud", "iat", "exp", "jti", "sid",
                                             "sub"]})
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= 120
    return claims


def sign_in(live, browser, card, rp, first: bool = True) -> dict:
    """A card login (or single sign-on for a next client): the verified ID token."""
    url = rp.authorization_url()
    params = code_from(browser.with_card(card, url) if first else browser.get(url))
    tokens = rp.exchange(params["code"]).json()
    return {**rp.verify_id_token(tokens["id_token"]), "_raw": tokens["id_token"]}


def outbox(live) -> list[BackchannelLogout]:
    with live.app.app_context():
        rows = db.session.scalars(select(BackchannelLogout).order_by(BackchannelLogout.id))
        return [(r.client_id, r.status, r.attempts) for r in rows]


def test_rp_initiated_logout_notifies_every_client_of_the_session(idp, browser, demo_card,
                                                                    receivers):
    first, second = receivers().start(), receivers().start()
    rp_a = idp.rp(backchannel_logout_uri=first.uri)
    rp_b = idp.rp(backchannel_logout_uri=second.uri,
                  backchannel_logout_session_required=True)
    rp_c = idp.rp()  # no back-channel URI: nothing for it
    id_a = sign_in(idp, browser, demo_card, rp_a)
    id_b = sign_in(idp, browser, demo_card, rp_b, first=False)
    sign_in(idp, browser, demo_card, rp_c, first=False)
    assert id_a["sid"] == id_b["sid"]

    logout = browser.get(rp_a.url("end_session_endpoint") + "?" + requests.compat.urlencode(
        {"id_token_hint": id_a["_raw"], "post_logout_redirect_uri": idp.logout_uri}))
    assert logout.status_code == 302

    for receiver, rp, id_token in ((first, rp_a, id_a), (second, rp_b, id_b)):
        claims = verify(idp, rp, receiver.token())
        assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"]
    deadline = time.time() + 10
    while any(status != "delivered" for _, status, _ in outbox(idp)):
        assert time.time() < deadline
        time.sleep(0.2)
    assert sorted(client for client, _, _ in outbox(idp)) == sorted(
        [rp_a.client_id, rp_b.client_id])
    assert first.tokens.empty() and second.tokens.empty()  # once each
    with idp.app.app_context():
        delivered = db.session.scalars(select(audit.AuditEvent).where(
            audit.AuditEvent.event == "logout.backchannel.delivered")).all()
        assert sorted(r.client_id for r in delivered) == sorted([rp_a.client_id,
                                                                 rp_b.client_id])


def test_console_end_session_and_directory_deactivation(idp, browser, demo_card, receivers):
    from psc_idp.directory.deactivation import _deactivate
    from psc_idp.directory.models import DirectoryImport

    receiver = receivers().start()
    rp = idp.rp(backchannel_logout_uri=receiver.uri)
    first = sign_in(idp, browser, demo_card, rp)
    with idp.app.app_context():  # what the console's "end session" and logout call
        assert revocation.end_session(first["sid"])
        db.session.commit()
    assert verify(idp, rp, receiver.token())["sid"] == first["sid"]

    second = sign_in(idp, browser, demo_card, rp)
    assert second["sid"] != first["sid"]
    with idp.app.app_context():  # the practitioner leaves the directory
        run = DirectoryImport(source="test", full=True, started_at=now())
        db.session.add(run)
        db.session.flush()
        assert _deactivate([demo_card.id_nat], run.id) == 1
    claims = verify(idp, rp, receiver.token())
    assert claims["sid"] == second["sid"] and claims["sub"] == second["sub"]


def test_a_receiver_down_gets_its_token_when_it_comes_back(keys_dir, database_url, cards,
                                                            smtp_server, tmp_path, card_curl,
                                                            demo_card, receivers):
    from .support import Browser

    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     backchannel_logout_interval=0) as live:
        down, failing = receivers(), receivers(status=500).start()
        rp, rp_failing = live.rp(backchannel_logout_uri=down.uri), \
            live.rp(backchannel_logout_uri=failing.uri)
        browser = Browser(live.ca, card_curl)
        id_token = sign_in(live, browser, demo_card, rp)
        sign_in(live, browser, demo_card, rp_failing, first=False)
        with live.app.app_context():
            t = now()
            assert revocation.end_session(id_token["sid"])  # nothing sent yet: no sender
            db.session.commit()
            started = time.perf_counter()
            assert backchannel.run_once(t) == {"delivered": 0, "retry": 2, "failed": 0}
            assert time.perf_counter() - started < 5  # a closed port answers at once
            assert failing.token()  # it got one, and answered 500
            assert backchannel.run_once(t + 4) == {"delivered": 0, "retry": 0, "failed": 0}
            down.start()
            assert backchannel.run_once(t + 5) == {"delivered": 1, "retry": 1, "failed": 0}
            assert verify(live, rp, down.token())["sid"] == id_token["sid"]
            # 5 s, 30 s, 2 min, 10 min, 1 h … given up 24 hours after the logout
            assert backchannel.run_once(t + 5 + 29)["retry"] == 0
            assert backchannel.run_once(t + 5 + 30)["retry"] == 1
            assert backchannel.run_once(t + 86400) == {"delivered": 0, "retry": 0,
                                                       "failed": 1}
            assert backchannel.run_once(t + 90000) == {"delivered": 0, "retry": 0,
                                                       "failed": 0}
            failed = db.session.scalars(select(audit.AuditEvent).where(
                audit.AuditEvent.event == "logout.backchannel.failed")).one()
            assert failed.client_id == rp_failing.client_id and failed.outcome == "failure"
            assert failed.detail["error"] == "HTTP 500" and failed.detail["attempts"] == 4
        assert sorted(outbox(live)) == sorted([(rp.client_id, "delivered", 2),
                                               (rp_failing.client_id, "failed", 4)])


def test_a_slow_client_delays_no_other(keys_dir, database_url, cards, smtp_server, tmp_path,
                                       card_curl, demo_card, receivers):
    from .support import Browser

    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     backchannel_logout_interval=0) as live:
        slow = [receivers(delay=2).start() for _ in range(3)]
        rps = [live.rp(backchannel_logout_uri=receiver.uri) for receiver in slow]
        browser = Browser(live.ca, card_curl)
        id_token = sign_in(live, browser, demo_card, rps[0])
        for rp in rps[1:]:
            sign_in(live, browser, demo_card, rp, first=False)
        with live.app.app_context():
            revocation.end_session(id_token["sid"])
            db.session.commit()
            started = time.perf_counter()
            assert backchannel.run_once()["delivered"] == 3
            assert time.perf_counter() - started < 4  # posted together, not one by one
        for receiver, rp in zip(slow, rps, strict=True):
            assert verify(live, rp, receiver.token())["sid"] == id_token["sid"]


def test_two_senders_never_claim_the_same_row(keys_dir, database_url, cards, smtp_server,
                                              tmp_path, card_curl, demo_card):
    from .support import Browser

    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     backchannel_logout_interval=0) as live:
        rp = live.rp(backchannel_logout_uri="http://127.0.0.1:9/backchannel-logout")
        id_token = sign_in(live, Browser(live.ca, card_curl), demo_card, rp)
        with live.app.app_context():
            t = now()
            revocation.end_session(id_token["sid"])
            db.session.commit()
            assert len(backchannel.claim(t)) == 1
            assert backchannel.claim(t) == []  # claimed by the first sender
            assert backchannel.claim(t + backchannel.CLAIM - 1) == []
            assert len(backchannel.claim(t + backchannel.CLAIM + 1)) == 1  # it died


def test_the_demo_rp_ends_its_session_on_a_valid_token_only(idp, browser, demo_card):
    port = free_port()
    base = f"http://localhost:{port}"
    with idp.app.app_context():
        client, secret = create_client(
            name="Démo", redirect_uris=[base + "/callback"], post_logout_redirect_uris=[
                base + "/"], backchannel_logout_uri=base + "/backchannel-logout")
        client_id = client.client_id
    demo = create_demo({"issuer": idp.issuer, "client_id": client_id,
                        "client_secret": secret, "ca_file": idp.ca})
    server = make_server("localhost", port, demo, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app_browser = requests.Session()
        app_browser.trust_env = False
        to_idp = app_browser.get(base + "/login", allow_redirects=False)
        back = browser.with_card(demo_card, to_idp.headers["Location"])
        landed = app_browser.get(back.headers["Location"], allow_redirects=True)
        assert 'id="logout"' in landed.text  # signed in at the demo app
        sid = demo.extensions["ended_sessions"]
        with idp.app.app_context():
            token = backchannel.logout_token(client_id, "RS256", "other-sid", "899700245667")
        header, payload, signature = token.split(".")
        tampered = ".".join((header, payload, signature[:-4] + (
            "AAAA" if signature[-4:] != "AAAA" else "BBBB")))
        for bad in (tampered, "", "not.a.jwt"):
            refused = requests.post(base + "/backchannel-logout", data={"logout_token": bad},
                                    timeout=10)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
        assert not sid.sids
        assert 'id="logout"' in app_browser.get(base + "/").text  # still signed in

        with idp.app.app_context():  # the IdP session ends elsewhere (console)
            session_id = db.session.scalars(select(LoginSession.sid).where(
                LoginSession.ended_at.is_(None))).one()
            revocation.end_session(session_id)
            db.session.commit()
        deadline = time.time() + 15
        while session_id not in sid.sids:
            assert time.time() < deadline
            time.sleep(0.2)
        home = app_browser.get(base + "/")
        assert 'id="logout"' not in home.text and 'id="signed-out"' in home.text
    finally:
        server.shutdown()
        server.server_close()


# --- registration ------------------------------------------------------------------------


@pytest.mark.parametrize("uri", [
    "ftp://rp.example/bc", "https://rp.example/bc#", "https://rp.example/bc#x",
    "http://rp.example/bc", "https://user@rp.example/bc", "rp.example/bc", 42, "",
])
def test_bad_backchannel_uris_are_refused(idp, uri):
    with idp.app.app_context(), pytest.raises(RegistrationError) as refused:
        validate({"backchannel_logout_uri": uri})
    assert refused.value.field == "backchannel_logout_uri"
    assert refused.value.error == "invalid_client_metadata"


def test_backchannel_metadata_through_every_door(idp):
    meta = requests.get(idp.issuer + "/.well-known/openid-configuration", verify=idp.ca,
                        timeout=10).json()
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
    with idp.app.app_context():
        assert validate({"backchannel_logout_uri": "HTTPS://RP.example:443/bc?x=1"}) == {
            "backchannel_logout_uri": "https://rp.example/bc?x=1"}
        assert validate({"backchannel_logout_uri": "http://localhost:8000/bc"})  # dev mode
        with pytest.raises(RegistrationError):
            validate({"backchannel_logout_session_required": "yes"})
        client, _ = create_client(name="bc", redirect_uris=["https://rp.example/cb"],
                                  backchannel_logout_uri="https://rp.example/bc")
        client_id = client.client_id
        assert client.backchannel_logout_session_required is False
        update_client(client, {"backchannel_logout_uri": None}, actor="test")
        assert db.session.get(Client, client_id).backchannel_logout_uri is None

    from psc_idp.cli import main

    cli = idp.app.test_cli_runner()
    created = cli.invoke(main, ["clients", "create", "--name", "bc cli", "--redirect-uri",
                                "https://rp.example/cb", "--backchannel-logout-uri",
                                "https://rp.example/bc", "--json"])
    assert created.exit_code == 0, created.output
    described = json.loads(created.stdout)
    assert described["backchannel_logout_uri"] == "https://rp.example/bc"
    assert described["backchannel_logout_session_required"] is False
    updated = cli.invoke(main, ["clients", "update", described["client_id"],
                                "--backchannel-session-required", "--json"])
    assert json.loads(updated.stdout)["backchannel_logout_session_required"] is True
    refused = cli.invoke(main, ["clients", "update", described["client_id"],
                                "--backchannel-logout-uri", "http://rp.example/bc"])
    assert refused.exit_code == 1 and "backchannel_logout_uri" in refused.output
    removed = cli.invoke(main, ["clients", "update", described["client_id"],
                                "--backchannel-logout-uri", "none", "--json"])
    assert json.loads(removed.stdout)["backchannel_logout_uri"] is None


def test_https_only_in_production(keys_dir, tmp_path, cards):
    from psc_idp import create_app

    from .plugins.idp import base_settings
    from .test_production import METRICS_TOKEN, PROXY_SECRET

    pki = cards.pki
    app = create_app(base_settings(
        keys_dir, f"sqlite:///{tmp_path / 'db.sqlite3'}", mode="production",
        issuer="https://idp.example/auth/realms/esante-wallet",
        card_login_url="https://card.idp.example",
        card_trust_anchors=[str(pki.trust_anchor)], card_intermediates=[str(pki.issuing_ca)],
        card_crls=[str(pki.crl)], trusted_proxies=["unix"], proxy_secret=PROXY_SECRET,
        sms_gateway="http", sms_http_url="http://127.0.0.1:9/sms",
        metrics_token=METRICS_TOKEN))
    with app.app_context():
        with pytest.raises(RegistrationError) as refused:
            validate({"backchannel_logout_uri": "http://localhost:8000/bc"})
        assert "https in production" in str(refused.value)
        assert validate({"backchannel_logout_uri": "https://rp.example/bc"})


def test_backchannel_metadata_through_the_admin_api_and_rfc7591(idp):
    from .test_attacks_clients import Doors

    doors = Doors(idp)
    bad = doors.register({"redirect_uris": ["https://rp.example/cb"],
                          "backchannel_logout_uri": "https://rp.example/bc#logout"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_client_metadata"
    assert "backchannel_logout_uri" in bad.json()["error_description"]
    registered = doors.register({"redirect_uris": ["https://rp.example/cb"],
                                 "backchannel_logout_uri": "https://rp.example/bc",
                                 "backchannel_logout_session_required": True})
    assert registered.status_code == 201, registered.text
    body = registered.json()
    assert body["backchannel_logout_uri"] == "https://rp.example/bc"
    assert body["backchannel_logout_session_required"] is True
    read = doors.manage("GET", body).json()
    assert read["backchannel_logout_uri"] == "https://rp.example/bc"

    created = doors.admin("POST", "/clients", json={
        "client_name": "admin bc", "redirect_uris": ["https://rp.example/cb"],
        "backchannel_logout_uri": "https://rp.example/admin-bc"})
    assert created.status_code == 201, created.text
    client_id = created.json()["client_id"]
    assert created.json()["backchannel_logout_uri"] == "https://rp.example/admin-bc"
    refused = doors.admin("PATCH", f"/clients/{client_id}",
                          json={"backchannel_logout_uri": "ftp://rp.example/bc"})
    assert refused.status_code == 400
    cleared = doors.admin("PATCH", f"/clients/{client_id}",
                          json={"backchannel_logout_uri": None})
    assert cleared.status_code == 200 and cleared.json()["backchannel_logout_uri"] is None


def test_housekeeping_ends_expired_sessions_with_their_back_channel_logout(
        keys_dir, database_url, cards, smtp_server, tmp_path, card_curl, demo_card, receivers):
    from psc_idp.housekeeping import purge

    from .support import Browser

    with running_idp(keys_dir, database_url, cards, smtp_server, tmp_path,
                     backchannel_logout_interval=0) as live:
        receiver = receivers().start()
        rp = live.rp(backchannel_logout_uri=receiver.uri)
        id_token = sign_in(live, Browser(live.ca, card_curl), demo_card, rp)
        with live.app.app_context():
            assert purge()["expired sessions"] == 0
            db.session.execute(db.update(LoginSession).values(expires_at=now() - 1))
            db.session.commit()
            counts = purge()
            assert counts["expired sessions"] == 1 and counts["back-channel logouts"] == 1
            assert db.session.get(LoginSession, id_token["sid"]).ended_at is not None
        assert verify(live, rp, receiver.token())["sid"] == id_token["sid"]


def test_housekeeping_keeps_the_tokens_of_a_live_session(keys_dir, database_url):
    """A token row names a client to notify: it outlives its expiry while its session
    lives, so the session's end still reaches that client."""
    from psc_idp import create_app
    from psc_idp.housekeeping import purge
    from psc_idp.oidc.models import Token

    from .plugins.idp import base_settings

    app = create_app(base_settings(keys_dir, database_url, backchannel_logout_interval=0))
    t = now()
    with app.app_context():
        client, _ = create_client(name="bc", redirect_uris=["https://rp.example/cb"],
                                  backchannel_logout_uri="http://127.0.0.1:9/bc")
        for sid in ("live", "over"):
            db.session.add(LoginSession(sid=sid, id_nat="899700245667", auth_time=t - 9000,
                                        acr="eidas1", amr=["sc"], auth_mode="CARD",
                                        expires_at=t + 3600,
                                        ended_at=None if sid == "live" else t - 10))
            db.session.add(Token(jti=sid, grant_id=sid, client_id=client.client_id,
                                 id_nat="899700245667", sid=sid, scope="openid",
                                 auth_time=t - 9000, acr="eidas1", amr=["sc"],
                                 auth_mode="CARD", issued_at=t - 9000,
                                 access_expires_at=t - 8000, refresh_expires_at=t - 7200))
        db.session.commit()
        assert purge()["tokens"] == 1
        assert db.session.scalars(select(Token.sid)).all() == ["live"]
        assert revocation.end_session("live")
        db.session.commit()
        assert outbox_of(client.client_id) == [("live", "pending")]
    with app.app_context():
        db.engine.dispose()


def outbox_of(client_id: str) -> list[tuple[str, str]]:
    return [(row.sid, row.status) for row in db.session.scalars(
        select(BackchannelLogout).where(BackchannelLogout.client_id == client_id))]


@pytest.mark.parametrize("uri", [
    "https://127.0.0.1/bc", "https://localhost:8443/bc", "https://10.1.2.3/bc",
    "https://192.168.0.10/bc", "https://169.254.169.254/latest", "https://[::1]/bc",
    "https://[fd00::1]/bc",
])
def test_private_destinations_are_recognised(uri):
    assert "not a public address" in backchannel.private_destination(uri)


@pytest.mark.parametrize("uri", ["https://8.8.8.8/bc", "https://[2001:4860:4860::8888]/bc"])
def test_public_destinations_are_not(uri):
    assert backchannel.private_destination(uri) is None


def test_production_posts_nothing_into_a_private_network(receivers):
    """A registered back-channel URI must not make psc-idp a way into its own network: in
    production (unless backchannel_logout_private_networks), a receiver on a private address
    gets nothing and the refusal is final; in development it gets its token."""
    receiver = receivers().start()
    refused = backchannel.post(receiver.uri, "a.logout.token", private_ok=False)
    assert refused.startswith(backchannel.REFUSED) and "127.0.0.1" in refused
    with pytest.raises(queue.Empty):
        receiver.tokens.get(timeout=1)
    assert backchannel.post(receiver.uri, "a.logout.token", private_ok=True) is None
    assert receiver.token() == "a.logout.token"
