"""The built-in e-CPS channel: phones long-poll ``/ecps/api/pending`` and wait on an event
loop (Twisted), not in a thread, so a thousand waiting phones cost a thousand sockets and
never hold up a token request.

A poll goes through the app first, in one of a few threads, like any request: the view
(``api.api_pending``) authenticates the phone (a fresh ``ecps-auth+jwt``, single-use jti)
and answers at once when a request is pending or ``wait`` is 0. Otherwise it leaves a
``api.Hold`` in the environ and the answer to give if nothing comes; the connection then
waits here (``WaitingRoom``) until the doorbell rings for its professional (``doorbell``:
NOTIFY on PostgreSQL, a periodic check of the database) or ``wait`` runs out. On a ring a
thread reads the device's requests again (the device must still be active) and the answer
goes out with the headers the app gave; a phone that hangs up is forgotten at once.

``psc-idp run`` serves the channel on its IdP listener (``serve``); behind nginx,
``psc-idp ecps channel`` (``server``) serves it alone and nginx routes the path to it."""

from __future__ import annotations

import io
import logging
import sys
import time
from dataclasses import dataclass

from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..extensions import db
from . import doorbell, service
from .api import HELD_BY_CHANNEL, HOLD
from .models import Device

log = logging.getLogger("psc_idp.ecps")

THREADS = 4                  # app threads of the channel (authentication, reads)
SWEEP_SQLITE = 0.5           # seconds between checks of the waiting idNats (no NOTIFY)
SWEEP_POSTGRES = 5.0         # the safety net behind NOTIFY
MAX_WAITS_PER_DEVICE = 2     # a third poll from one phone answers the oldest at once


@dataclass(eq=False)
class _Waiter:
    id_nat: str
    device_id: str
    done: Deferred | None = None
    timer: object = None


class WaitingRoom:
    """The phones waiting for a request, by idNat and by device; used on the reactor's
    thread only, except ``start``."""

    def __init__(self, app, pool):
        self.app, self.pool = app, pool
        self.by_id_nat: dict[str, set[_Waiter]] = {}
        self.by_device: dict[str, list[_Waiter]] = {}
        self._listener, self._sweeper, self._sweeping = None, None, False

    def __len__(self) -> int:
        return sum(len(waiters) for waiters in self.by_id_nat.values())

    def start(self) -> None:
        with self.app.app_context():
            postgres = doorbell.is_postgres(db.engine)
        if postgres:
            self._listener = doorbell.Listener(
                self.app, lambda id_nat: reactor.callFromThread(self.ring, id_nat),
                lambda: reactor.callFromThread(self.sweep))
            self._listener.start()
        self._sweeper = LoopingCall(self.sweep)
        reactor.callFromThread(self._sweeper.start, SWEEP_POSTGRES if postgres else
                               SWEEP_SQLITE, now=False)

    def close(self) -> Deferred:
        """Stop ringing (the connections are closed by their listener)."""
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        listener, self._listener = self._listener, None
        return deferToThread(listener.stop) if listener else succeed(None)

    def wait(self, id_nat: str, device_id: str, seconds: float) -> Deferred:
        """Fires with True when the doorbell rings for ``id_nat``, False after ``seconds``
        (or when the same device polls a third time); cancel it when the phone hangs up."""
        waiter = _Waiter(id_nat, device_id)
        waiter.done = Deferred(canceller=lambda _: self._leave(waiter))
        waiter.timer = reactor.callLater(seconds, self._answer, waiter, False)
        self.by_id_nat.setdefault(id_nat, set()).add(waiter)
        mine = self.by_device.setdefault(device_id, [])
        mine.append(waiter)
        if len(mine) > MAX_WAITS_PER_DEVICE:
            self._answer(mine[0], False)
        return waiter.done

    def ring(self, id_nat: str) -> None:
        for waiter in list(self.by_id_nat.get(id_nat, ())):
            self._answer(waiter, True)

    def _answer(self, waiter: _Waiter, rung: bool) -> None:
        self._leave(waiter)
        waiter.done.callback(rung)

    def _leave(self, waiter: _Waiter) -> None:
        if waiter.timer.active():
            waiter.timer.cancel()
        for index, key in ((self.by_id_nat, waiter.id_nat),
                           (self.by_device, waiter.device_id)):
            group = index.get(key, ())
            if waiter in group:
                group.remove(waiter)
            if not group:
                index.pop(key, None)

    def sweep(self) -> None:
        """Ask the database which waiting idNats have a request (one query at a time)."""
        if not self.by_id_nat or self._sweeping:
            return
        self._sweeping = True
        found = deferToThreadPool(reactor, self.pool, self._with_pending, list(self.by_id_nat))
        found.addCallback(lambda id_nats: [self.ring(id_nat) for id_nat in id_nats])
        found.addErrback(lambda failure: log.warning("e-CPS channel: check failed: %s",
                                                     failure.type.__name__))
        found.addBoth(lambda _: setattr(self, "_sweeping", False))

    def _with_pending(self, id_nats: list[str]) -> set[str]:
        with self.app.app_context():
            return doorbell.with_pending(id_nats)


@dataclass
class _Answer:
    """The app's response to a poll, and the hold it asked for (``api.Hold``) if any."""

    code: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    hold: object = None


class PendingResource(Resource):
    """``/ecps/api/pending`` on the event loop; ``extra``: environ keys of the listener
    (the origin, as ``serve`` marks every request)."""

    isLeaf = True

    def __init__(self, app, pool, room: WaitingRoom, extra: dict | None = None):
        super().__init__()
        self.app, self.pool, self.room, self.extra = app, pool, room, extra or {}

    def render(self, request):
        _Poll(self, request).start()
        return NOT_DONE_YET


class _Poll:
    """One phone's poll, from the app's first answer to the one sent."""

    def __init__(self, resource: PendingResource, request):
        self.resource, self.request, self.gone, self.waiting = resource, request, False, None
        request.notifyFinish().addErrback(self._hung_up)

    def start(self) -> None:
        environ = wsgi_environ(self.request, {**self.resource.extra, HELD_BY_CHANNEL: True})
        call = deferToThreadPool(reactor, self.resource.pool, _call_app, self.resource.app,
                                 environ)
        call.addCallbacks(self._answered, self._failed)

    def _answered(self, answer: _Answer) -> None:
        self.answer = answer
        if answer.hold is None:
            self._send()
        else:
            self._hold()

    def _hold(self) -> None:
        left = self.answer.hold.deadline - time.monotonic()
        if self.gone or left <= 0:
            return self._send()
        hold = self.answer.hold
        self.waiting = self.resource.room.wait(hold.id_nat, hold.device_id, left)
        self.waiting.addCallbacks(self._rung, lambda failure: failure.trap(CancelledError))

    def _rung(self, rung: bool) -> None:
        if not rung or self.gone:
            return self._send()
        read = deferToThreadPool(reactor, self.resource.pool, _pending_body,
                                 self.resource.app, self.answer.hold.device_id)
        read.addCallbacks(lambda body: self._send(body) if body else self._hold(),
                          self._read_failed)

    def _read_failed(self, failure) -> None:
        log.warning("e-CPS channel: cannot read the pending requests: %s",
                    failure.type.__name__)
        self._send()

    def _failed(self, failure) -> None:
        log.error("e-CPS channel: the app failed", exc_info=failure.value)
        self.answer = _Answer(500, b"Internal Server Error",
                              [(b"content-type", b"text/plain")], b"internal error\n")
        self._send()

    def _hung_up(self, _failure) -> None:
        self.gone = True
        if self.waiting is not None:
            self.waiting.cancel()

    def _send(self, body: bytes | None = None) -> None:
        if self.gone:
            return
        request, answer = self.request, self.answer
        body = answer.body if body is None else body
        request.defaultContentType = None
        request.setResponseCode(answer.code, answer.reason)
        for name, value in answer.headers:
            if name.lower() != b"content-length":
                request.responseHeaders.addRawHeader(name, value)
        request.responseHeaders.setRawHeaders(b"content-length", [str(len(body)).encode()])
        request.write(body)
        request.finish()


def _call_app(app, environ: dict) -> _Answer:
    """Run the WSGI app on one request and keep its whole answer (in a pool thread)."""
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=status, headers=headers)
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    code, _, reason = started["status"].partition(" ")
    return _Answer(int(code), reason.encode("latin-1"),
                   [(k.encode("latin-1"), v.encode("latin-1")) for k, v in started["headers"]],
                   body, environ.get(HOLD))


def _pending_body(app, device_id: str) -> bytes | None:
    """The answer's body once the doorbell rang: the device's requests (the device still
    active), or None when there is nothing to show after all."""
    with app.app_context():
        device = db.session.get(Device, device_id)
        requests = service.pending_for(device) if device and device.status == "active" \
            else []
        db.session.rollback()
        return app.json.response(requests=requests).get_data() if requests else None


def wsgi_environ(request, extra: dict) -> dict:
    """The WSGI environ of a Twisted request, built as ``twisted.web.wsgi`` builds it (PEP
    3333; the app sits at the root), for an app called outside ``WSGIResource``."""
    peer, host = request.getClientAddress(), request.getHost()
    request.content.seek(0)
    environ = {
        "REQUEST_METHOD": _native(request.method), "SCRIPT_NAME": "",
        "PATH_INFO": _native(request.path),
        "QUERY_STRING": _native(request.uri.partition(b"?")[2]),
        "REMOTE_ADDR": getattr(peer, "host", ""),  # a Unix socket has no address
        "REMOTE_PORT": str(getattr(peer, "port", "")),
        "CONTENT_TYPE": _native(request.getHeader(b"content-type") or b""),
        "CONTENT_LENGTH": _native(request.getHeader(b"content-length") or b""),
        "SERVER_NAME": _native(request.getRequestHostname()),
        "SERVER_PORT": str(getattr(host, "port", "")),
        "SERVER_PROTOCOL": _native(request.clientproto),
        "wsgi.version": (1, 0), "wsgi.url_scheme": "https" if request.isSecure() else "http",
        "wsgi.run_once": False, "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.errors": sys.stderr, "wsgi.input": io.BytesIO(request.content.read()),
    }
    for name, values in request.requestHeaders.getAllRawHeaders():
        key = "HTTP_" + _native(name).upper().replace("-", "_")
        environ[key] = ",".join(_native(v) for v in values).replace("\n", " ")
    environ.update(extra)
    return environ


def _native(value: bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)
