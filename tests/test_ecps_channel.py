"""The e-CPS channel, on both databases: a phone waiting on ``/ecps/api/pending`` costs a
socket, not a thread; a login request made by another process reaches it within about a
second (NOTIFY on PostgreSQL, a periodic check on SQLite); the refusals are the API's; a
phone that hangs up is forgotten; behind nginx, ``psc-idp ecps channel`` serves the path
and gunicorn takes over (a few waiting phones per process) while it is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread
from werkzeug.serving import make_server

from psc_idp import create_app
from psc_idp.ecps import service
from psc_idp.ecps.channel_server import ChannelServer
from psc_idp.ecps.login_requests import start_login
from psc_idp.ecps.models import Device
from psc_idp.ecps.simulator import device_auth
from psc_idp.extensions import db
from psc_idp.serve import start_reactor
from psc_idp.settings import as_dict
from tests.plugins.idp import LiveServer, free_port, live_settings
from tests.plugins.nginx import PROXY_SECRET, Nginx, render_site

KIT = "899700245667"
PENDING = "/ecps/api/pending"


@dataclass
class Phone:
    """An enrolled device (its row written directly: enrolment is tested elsewhere)."""

    device_id: str
    id_nat: str
    key: ec.EllipticCurvePrivateKey
    issuer: str

    def auth(self) -> str:
        return device_auth({"device_id": self.device_id, "issuer": self.issuer}, self.key)


def enrol(app, id_nat: str, count: int = 1) -> list[Phone]:
    phones = []
    with app.app_context():
        issuer = app.extensions["psc_idp"].settings.issuer
        for _ in range(count):
            key = ec.generate_private_key(ec.SECP256R1())
            public = ECKey.import_key(key.public_key()).as_dict(private=False)
            device = Device(id=secrets.token_urlsafe(16), id_nat=id_nat, public_jwk=public,
                            thumbprint=secrets.token_hex(32), label="test", created_at=0,
                            status="active", activated_by="card")
            db.session.add(device)
            phones.append(Phone(device.id, id_nat, key, issuer))
        db.session.commit()
    return phones


def login_request(app, id_nat: str = KIT) -> str:
    """A login request started as the login page does (in ``app``: another process)."""
    with app.app_context():
        return start_login(secrets.token_urlsafe(16), "channel-test", id_nat, "channel test",
                           "192.0.2.0/24").id


@pytest.fixture
def other_process(idp):
    """A second app on the same database: all it shares with the server is the database."""
    app = create_app(as_dict(idp.app.extensions["psc_idp"].settings))
    yield app
    with app.app_context():
        db.engine.dispose()


def room(idp):
    return idp.server.servers[0].phones


def waiting(phones_room) -> int:
    return blockingCallFromThread(reactor, len, phones_room)


def until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def run(coroutine):
    """``asyncio.run`` in a thread of its own: the main thread may already run an event loop
    (Playwright's synchronous API keeps one there for the browser tests of the session)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


async def poll(base: str, auth: str | None, wait="20", ca: str | None = None,
               method: str = "GET") -> tuple[int, dict, dict]:
    """One long poll over its own connection: (status, headers, JSON body)."""
    url = urlsplit(base)
    context = ssl.create_default_context(cafile=ca) if url.scheme == "https" else None
    reader, writer = await asyncio.open_connection(
        url.hostname, url.port, ssl=context, server_hostname=url.hostname if context else None)
    head = f"{method} {url.path}{PENDING}?wait={wait} HTTP/1.1\r\nHost: {url.netloc}\r\n" \
           f"Connection: close\r\n"
    if auth:
        head += f"Authorization: ECPS {auth}\r\n"
    writer.write((head + "\r\n").encode())
    try:
        raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(Exception):  # the server may have closed first: fine
            await asyncio.wait_for(writer.wait_closed(), 2)
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().split(": ", 1) for line in header_block.split(b"\r\n"))
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, \
        json.loads(body or b"{}")


def test_a_request_made_elsewhere_reaches_the_waiting_phone_within_a_second(idp,
                                                                            other_process):
    [phone] = enrol(idp.app, KIT)

    async def scenario():
        task = asyncio.create_task(poll(idp.issuer, phone.auth(), ca=idp.ca))
        await asyncio.to_thread(until, lambda: waiting(room(idp)) == 1)
        started = time.monotonic()
        request_id = await asyncio.to_thread(login_request, other_process)
        status, _, body = await asyncio.wait_for(task, 10)
        return status, body, request_id, time.monotonic() - started

    status, body, request_id, seconds = run(scenario())
    assert status == 200 and [r["request"] for r in body["requests"]] == [request_id]
    assert len(body["requests"][0]["candidates"]) == 3
    assert seconds < 1.5, seconds
    assert waiting(room(idp)) == 0


def test_two_hundred_waiting_phones_hold_no_thread(idp, other_process):
    """More waiting phones than app threads (32): the listener keeps answering; a request
    wakes its professional's phones only; the others answer at their deadline."""
    kits = enrol(idp.app, KIT, 3)
    others = [phone for i in range(197)
              for phone in enrol(idp.app, f"80000{i:07d}")]
    threads = threading.active_count()

    async def scenario():
        tasks = {phone.device_id: asyncio.create_task(
            poll(idp.issuer, phone.auth(), wait="12", ca=idp.ca)) for phone in kits + others}
        await asyncio.to_thread(until, lambda: waiting(room(idp)) == 200)
        started = time.monotonic()
        for _ in range(5):
            answer = await asyncio.to_thread(requests.get, idp.issuer + "/.well-known/"
                                             "openid-configuration", verify=idp.ca, timeout=5)
            assert answer.status_code == 200
        assert time.monotonic() - started < 2.5
        assert threading.active_count() - threads < 20
        request_id = await asyncio.to_thread(login_request, other_process)
        woken = await asyncio.wait_for(asyncio.gather(
            *(tasks[p.device_id] for p in kits)), 5)
        assert waiting(room(idp)) == 197
        return request_id, woken, await asyncio.gather(*tasks.values())

    request_id, woken, everyone = run(scenario())
    assert [[r["request"] for r in body["requests"]] for _, _, body in woken] == \
        [[request_id]] * 3
    assert sorted(status for status, _, _ in everyone) == [200] * 200
    assert sum(1 for _, _, body in everyone if body["requests"]) == 3
    assert waiting(room(idp)) == 0


def test_a_phone_that_hangs_up_is_forgotten(idp):
    phones = enrol(idp.app, KIT, 2)

    async def scenario():
        tasks = [asyncio.create_task(poll(idp.issuer, p.auth(), ca=idp.ca)) for p in phones]
        await asyncio.to_thread(until, lambda: waiting(room(idp)) == 2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    run(scenario())
    until(lambda: waiting(room(idp)) == 0, timeout=5)


def test_a_third_poll_from_one_phone_answers_the_oldest(idp):
    [phone] = enrol(idp.app, KIT)

    async def scenario():
        first = asyncio.create_task(poll(idp.issuer, phone.auth(), ca=idp.ca))
        await asyncio.to_thread(until, lambda: waiting(room(idp)) == 1)
        second = asyncio.create_task(poll(idp.issuer, phone.auth(), ca=idp.ca))
        await asyncio.to_thread(until, lambda: waiting(room(idp)) == 2)
        third = asyncio.create_task(poll(idp.issuer, phone.auth(), ca=idp.ca))
        status, _, body = await asyncio.wait_for(first, 5)
        assert (status, body) == (200, {"requests": []})
        assert not second.done() and not third.done() and waiting(room(idp)) == 2
        for task in (second, third):
            task.cancel()
        await asyncio.gather(second, third, return_exceptions=True)

    run(scenario())


def test_refusals_and_headers_are_the_apis(idp):
    [phone] = enrol(idp.app, KIT)
    token = phone.auth()

    async def scenario():
        return [await poll(idp.issuer, token, wait="0", ca=idp.ca),
                await poll(idp.issuer, token, wait="0", ca=idp.ca),
                await poll(idp.issuer, phone.auth(), wait="abc", ca=idp.ca),
                await poll(idp.issuer, None, ca=idp.ca),
                await poll(idp.issuer, phone.auth(), ca=idp.ca, method="POST")]

    fresh, replayed, bad_wait, anonymous, post = run(scenario())
    assert fresh[0] == 200 and fresh[2] == {"requests": []}
    assert (replayed[0], replayed[2]["error"]) == (401, "invalid_token")
    assert (bad_wait[0], bad_wait[2]["error"]) == (400, "invalid_request")
    assert (anonymous[0], anonymous[2]["error"]) == (401, "invalid_token")
    assert post[0] == 405
    for _, headers, _ in (fresh, replayed):
        assert headers["cache-control"] == "no-store"
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["strict-transport-security"] and headers["x-request-id"]
        assert "server" not in headers


def test_a_device_revoked_while_waiting_sees_nothing(idp, other_process):
    kept, revoked = enrol(idp.app, KIT, 2)

    async def scenario():
        tasks = [asyncio.create_task(poll(idp.issuer, p.auth(), wait="4", ca=idp.ca))
                 for p in (kept, revoked)]
        await asyncio.to_thread(until, lambda: waiting(room(idp)) == 2)
        with idp.app.app_context():
            assert service.revoke_device(revoked.device_id, KIT)
        request_id = await asyncio.to_thread(login_request, other_process)
        return request_id, await asyncio.gather(*tasks)

    request_id, ((_, _, seen), (status, _, unseen)) = run(scenario())
    assert [r["request"] for r in seen["requests"]] == [request_id]
    assert status == 200 and unseen == {"requests": []}


def test_without_the_channel_a_process_holds_few_waiting_phones(keys_dir, database_url, cards):
    """gunicorn reached directly (here werkzeug): ``ecps_poll_threads`` phones wait in a
    thread, the next is told to come back; a poll that does not wait is always served."""
    app = create_app(live_settings(keys_dir, database_url, cards, ecps_poll_threads=1))
    port = free_port()
    server = LiveServer(app, [make_server("127.0.0.1", port, app, threaded=True)])
    server.start()
    base = f"http://127.0.0.1:{port}" + urlsplit(server.issuer).path
    first, second, third = enrol(app, KIT, 3)
    try:
        async def scenario():
            held = asyncio.create_task(poll(base, first.auth(), wait="3"))
            await asyncio.sleep(1)
            return await poll(base, second.auth(), wait="3"), \
                await poll(base, third.auth(), wait="0"), await held

        busy, immediate, held = run(scenario())
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()
    assert (busy[0], busy[2]["error"], busy[1]["retry-after"]) == \
        (503, "temporarily_unavailable", "5")
    assert immediate[0] == 200 and held[0] == 200 and held[2] == {"requests": []}


def test_channel_server_behind_nginx(keys_dir, database_url, cards, tmp_path):
    """The shipped nginx site routes the long poll to ``psc-idp ecps channel`` (its own
    process: here its own app) on a Unix socket, the rest to the app; with the channel
    stopped, the app answers the poll."""
    idp_port, card_port, app_port = free_port(), free_port(), free_port()
    socket_path = tmp_path / "channel.sock"
    settings = live_settings(keys_dir, database_url, cards,
                             trusted_proxies=["127.0.0.1/32", "unix"],
                             proxy_secret=PROXY_SECRET,
                             ecps_channel_listen=f"unix:{socket_path}")
    settings.update(issuer=f"https://localhost:{idp_port}/auth/realms/esante-wallet",
                    card_login_url=f"https://localhost:{card_port}")
    app, channel_app = create_app(settings), create_app(settings)
    server = LiveServer(app, [make_server("127.0.0.1", app_port, app, threaded=True)])
    server.start()
    channel = ChannelServer(channel_app)
    site = render_site(cards.pki, [app_port], idp_port, card_port).replace(
        "unix:/run/psc-idp-channel/http.sock", f"unix:{socket_path}")
    nginx = Nginx(tmp_path / "nginx", site)
    [phone] = enrol(app, KIT)
    ca = str(cards.pki.tls_ca)
    start_reactor()
    channel.start()
    try:
        nginx.start([idp_port, card_port])

        async def scenario():
            task = asyncio.create_task(poll(settings["issuer"], phone.auth(), ca=ca))
            await asyncio.to_thread(until, lambda: waiting(channel.room) == 1)
            started = time.monotonic()
            request_id = await asyncio.to_thread(login_request, app)
            answer = await asyncio.wait_for(task, 10)
            return request_id, answer, time.monotonic() - started

        request_id, (status, headers, body), seconds = run(scenario())
        assert status == 200 and [r["request"] for r in body["requests"]] == [request_id]
        assert seconds < 1.5 and headers["cache-control"] == "no-store"
        channel.stop()
        channel = None
        status, _, body = run(poll(settings["issuer"], phone.auth(), wait="0", ca=ca))
        assert status == 200 and [r["request"] for r in body["requests"]] == [request_id]
    finally:
        if channel is not None:
            channel.stop()
        nginx.stop()
        server.stop()
        for each in (app, channel_app):
            with each.app_context():
                db.engine.dispose()

