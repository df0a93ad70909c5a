"""The embedded listeners of ``psc-idp run``: the IdP origin, the card origin and, when
configured, the authorization endpoint's own origin (``wallet_listen``) and the mTLS origin
(``mtls_listen``, RFC 8705) over TLS, plus the
operations listener (``ops_listen``: plain HTTP for probes and Prometheus). In production
nginx terminates TLS instead (config/nginx) and gunicorn serves the app.

They run on Twisted Web (``twisted.web.wsgi``), chosen because one event loop accepts every
connection, runs its TLS handshake on a memory BIO (``twisted.protocols.tls``) and parses its
request head without a thread: an idle or stalled client costs a socket, never a thread,
and cannot hold up anyone else. Only complete requests reach the bounded thread pool that
runs the Flask app; a phone's long poll (``/ecps/api/pending``) waits on the event loop too
(``ecps.channel``), holding a thread only while the app authenticates it. TLS goes through
pyOpenSSL, whose verify callback lets the card origin accept any certificate and leave the
judgement to psc-idp (``tls``). The servers considered instead do the handshake where a
stalled client holds others up: werkzeug's inside ``accept()``; cheroot's connection manager
in its selector thread (``ssl_adapter.wrap``, up to its socket timeout); gunicorn's gthread
worker on one of its few request threads (``TConn.init``), with Python's ``ssl``, which
cannot accept an untrusted card.

Limits: Twisted's (``HTTPChannel.totalHeadersSize`` 16 KiB of request line and headers,
``maxHeaders``); ours: a connection has ``request_timeout`` seconds from its opening (or its
previous response) to finish the TLS handshake and send a whole request, and request bodies
need a ``Content-Length`` of at most ``MAX_BODY``. The access log holds paths without query
strings: they carry one-time values (the card hand-off ``h``, ``tx``, codes)."""

from __future__ import annotations

import functools
import logging
import threading
from urllib.parse import urlsplit

from flask import Flask
from OpenSSL.SSL import Connection
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.threads import blockingCallFromThread, deferToThread
from twisted.protocols.basic import LineReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.threadpool import ThreadPool
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.wsgi import WSGIResource
from zope.interface import implementer

from . import audit_sequencer, origins, tls
from .ciba import ping as ciba_ping
from .ecps.channel import THREADS as CHANNEL_THREADS
from .ecps.channel import PendingResource, WaitingRoom
from .oidc import backchannel

access_log = logging.getLogger("psc_idp.access")

MAX_BODY = 1024 * 1024  # the app refuses more than 64 KiB anyway (MAX_CONTENT_LENGTH)
MAX_HEADERS = 100
APP_THREADS = 32        # requests running in the app at once (a waiting phone holds none)
BACKLOG = 1024


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


class _Channel(HTTPChannel):
    """One client connection. Twisted resets its idle timer on every byte; here the timer
    keeps running until a whole request has arrived, so a client dribbling its headers (or
    a TLS handshake that never ends) is cut off after ``request_timeout`` seconds."""

    maxHeaders = MAX_HEADERS

    def dataReceived(self, data: bytes) -> None:
        # HTTPChannel.dataReceived without its resetTimeout(); HTTPChannel itself stops the
        # timer once a request is complete and restarts it after the response.
        LineReceiver.dataReceived(self, data)

    def timeoutConnection(self) -> None:
        self.transport.abortConnection()

    def allHeadersReceived(self) -> None:
        if self.length is None:
            return self._refuse(b"411 Length Required")  # chunked: the app reads no body then
        if self.length > MAX_BODY:
            return self._refuse(b"413 Content Too Large")
        super().allHeadersReceived()

    def checkPersistence(self, request, version) -> bool:
        """The card origin closes each connection after its answer: a card login is one
        request, and a kept-alive connection would let the next login on that browser (a
        shared workstation, the card since removed) ride on this handshake's card."""
        if self.site.origin == origins.CARD:
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])
            return False
        return super().checkPersistence(request, version)

    def _refuse(self, status: bytes) -> None:
        """Answer ``status`` and read nothing more from this connection."""
        self.dataReceived = self.lineReceived = self.rawDataReceived = _ignore
        self.transport.write(b"HTTP/1.1 " + status +
                             b"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        self.loseConnection()

    def connectionLost(self, reason) -> None:
        self.factory.channels.discard(self)
        super().connectionLost(reason)


def _ignore(*_args) -> None:
    return None


class OriginSite(Site):
    """The HTTP side of one listener; it keeps its open connections (to close them on stop)
    and writes the access log."""

    protocol = _Channel
    noisy = False

    def __init__(self, origin: str, resource: Resource, timeout: int):
        super().__init__(resource, timeout=timeout, parsePOSTFormSubmission=False)
        self.origin, self.channels = origin, set()

    def buildProtocol(self, addr):
        channel = super().buildProtocol(addr)
        self.channels.add(channel)
        return channel

    def log(self, request) -> None:
        """Twisted logs a request when it finishes, which it does not when the client has
        already closed the connection: ``access`` logs either way."""

    def access(self, request) -> None:
        access_log.info('%s %s "%s %s" %d %s', self.origin, request.getClientAddress().host,
                        request.method.decode("ascii", "replace"),
                        request.path.decode("ascii", "backslashreplace")[:256], request.code,
                        request.sentLength or "-")


def _with_environ(app, extra: dict, environ: dict, start_response):
    environ.update(extra)
    return app(environ, start_response)


class _OriginResource(Resource):
    """Hands every request to the WSGI app, marked with the origin that received it and, on
    the card and mTLS origins, with the client certificate of the TLS handshake."""

    isLeaf = True

    def __init__(self, app, pool: ThreadPool, origin: str, phones: WaitingRoom | None = None):
        super().__init__()
        self.app, self.pool, self.origin = app, pool, origin
        self.phones = phones  # the IdP origin: its long poll waits in the e-CPS channel
        self.pending_path = pending_path(app).encode() if phones is not None else None

    def render(self, request):
        request.responseHeaders.removeHeader(b"server")
        request.notifyFinish().addBoth(lambda _: request.site.access(request))
        extra = {origins.ENVIRON_KEY: self.origin}
        if self.origin in (origins.CARD, origins.MTLS):
            connection = request.channel.transport.getHandle()
            extra["SSL_CLIENT_CERT"] = tls.peer_certificate_pem(connection)
        if self.pending_path and request.path.rstrip(b"/") == self.pending_path:
            return PendingResource(self.app, self.phones.pool, self.phones,
                                   extra).render(request)
        app = functools.partial(_with_environ, self.app, extra)
        return WSGIResource(reactor, self.pool, app).render(request)


def pending_path(app) -> str:
    """The path of the phones' long poll (under the issuer's path)."""
    issuer = app.extensions["psc_idp"].settings.issuer
    return urlsplit(issuer).path.rstrip("/") + "/ecps/api/pending"


@implementer(IOpenSSLServerConnectionCreator)
class _TlsCreator:
    """One pyOpenSSL connection per accepted socket, from the listener's context."""

    def __init__(self, context):
        self.context = context

    def serverConnectionForTLS(self, protocol) -> Connection:
        return Connection(self.context)


class Listeners:
    """The embedded listeners of one app on the Twisted reactor, with their app threads."""

    def __init__(self, app: Flask):
        settings = app.extensions["psc_idp"].settings
        if settings.request_timeout < 1:
            raise ValueError("request_timeout must be at least 1 second")
        self.app, self.ports = app, []
        self.pool = ThreadPool(minthreads=2, maxthreads=APP_THREADS, name="psc-idp app")
        self.phones = WaitingRoom(app, ThreadPool(minthreads=1, maxthreads=CHANNEL_THREADS,
                                                  name="psc-idp e-CPS channel"))
        plain = tls.server_context(settings.tls_cert, settings.tls_key)
        card = tls.card_context(settings.tls_cert, settings.tls_key,
                                settings.card_trust_anchors + settings.card_intermediates)
        self.plan = [(origins.IDP, settings.listen, plain),
                     (origins.CARD, settings.card_listen, card)]
        if settings.wallet_listen:  # the authorization endpoint's own origin (psc.md §1)
            self.plan.append((origins.WALLET, settings.wallet_listen, plain))
        if settings.mtls_listen:  # RFC 8705 §5: the mTLS endpoint aliases
            self.plan.append((origins.MTLS, settings.mtls_listen, tls.mtls_context(
                settings.tls_cert, settings.tls_key,
                settings.org_trust_anchors + settings.org_intermediates)))
        if settings.ops_listen:
            self.plan.append((origins.OPS, settings.ops_listen, None))
        self.sites = [OriginSite(origin, _OriginResource(
            app, self.pool, origin, self.phones if origin == origins.IDP else None),
            settings.request_timeout) for origin, _, _ in self.plan]

    def start(self) -> None:
        """Listen: directly before ``reactor.run()``, or through the reactor's thread when
        it already runs in another thread (``start_reactor``)."""
        state = self.app.extensions["psc_idp"]
        state.cards.crls.start()  # the CRLs before the first login
        if state.orgs is not None:
            state.orgs.crls.start()  # and before the first tls_client_auth
        audit_sequencer.start(self.app)  # chains the audit records committed meanwhile
        backchannel.start(self.app)  # sends the logout tokens still due
        ciba_ping.start(self.app)  # and the CIBA notifications
        self.pool.start()
        try:
            if reactor.running:
                blockingCallFromThread(reactor, self._listen)
            else:
                self._listen()
        except CannotListenError as exc:
            self.pool.stop()
            raise OSError(f"cannot listen on {exc.interface}:{exc.port}: "
                          f"{exc.socketError}") from exc
        self.phones.pool.start()
        self.phones.start()

    def _listen(self) -> None:
        for (_, address, context), site in zip(self.plan, self.sites, strict=True):
            host, port = _address(address)
            factory = site if context is None else \
                TLSMemoryBIOFactory(_TlsCreator(context), False, site)
            self.ports.append(reactor.listenTCP(port, factory, BACKLOG, host))

    def stop(self) -> None:
        """Stop listening, drop open connections, wait for requests under way (from any
        thread but the reactor's)."""
        audit_sequencer.stop(self.app)
        backchannel.stop(self.app)
        ciba_ping.stop(self.app)
        blockingCallFromThread(reactor, self._close)
        self._stop_pools()

    def _close(self) -> DeferredList:
        stopped = DeferredList([port.stopListening() for port in self.ports] +
                               [self.phones.close()])
        self.ports = []
        for site in self.sites:
            for channel in list(site.channels):
                channel.transport.abortConnection()
        return stopped

    def _shutdown(self):
        """Reactor shutdown (``psc-idp run``): close, then wait for the app threads off the
        reactor's thread (their responses still go through it)."""
        return self._close().addCallback(lambda _: deferToThread(self._stop_pools))

    def _stop_pools(self) -> None:
        self.phones.pool.stop()
        self.pool.stop()


_reactor_lock = threading.Lock()  # the reactor is process-wide, and so is its thread


def start_reactor() -> None:
    """Run the reactor in a daemon thread, once per process (tests, embedding psc-idp);
    ``Listeners.start`` then listens through it."""
    with _reactor_lock:
        if reactor.running:
            return
        running = threading.Event()
        reactor.callWhenRunning(running.set)
        threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                         daemon=True, name="psc-idp reactor").start()
        running.wait(10)


def serve_forever(app: Flask) -> Listeners:
    """``psc-idp run``: serve until SIGINT or SIGTERM, then finish the requests under way."""
    setup_logging()
    raise_open_files_limit()
    listeners = Listeners(app)
    listeners.start()
    reactor.addSystemEventTrigger("before", "shutdown", listeners._shutdown)
    reactor.run()
    return listeners


def setup_logging() -> None:
    """Twisted's own messages (warnings and worse) and the access log, to the standard
    logging of the process."""
    from twisted.logger import STDLibLogObserver, globalLogPublisher

    globalLogPublisher.addObserver(STDLibLogObserver(name="psc_idp.server"))
    logging.getLogger("psc_idp.server").setLevel(logging.WARNING)
    if not access_log.hasHandlers():
        access_log.addHandler(logging.StreamHandler())
    if access_log.getEffectiveLevel() > logging.INFO:
        access_log.setLevel(logging.INFO)


def raise_open_files_limit() -> None:
    """Every open connection is a file descriptor: use the hard limit, not the soft one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
