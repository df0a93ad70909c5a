"""``psc-idp ecps channel``: the e-CPS channel (``channel``) in a process of its own, plain
HTTP on ``ecps_channel_listen`` (a Unix socket or host:port) behind nginx, which routes the
phones' long poll to it (config/nginx/psc-idp.conf) while gunicorn serves everything else.
One event loop holds every waiting phone (a socket each); a few threads authenticate the
polls and read the requests. It answers nothing but the long poll."""

from __future__ import annotations

import socket
from pathlib import Path

from flask import Flask
from twisted.internet import reactor
from twisted.internet.defer import DeferredList
from twisted.internet.threads import blockingCallFromThread, deferToThread
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource

from ..serve import BACKLOG, OriginSite, pending_path, raise_open_files_limit, setup_logging
from .channel import THREADS, PendingResource, WaitingRoom

ORIGIN = "ecps-channel"  # the access log's name for this listener


class _Root(Resource):
    """The long poll's path, and 404 for anything else."""

    isLeaf = True

    def __init__(self, pending: PendingResource, path: str):
        super().__init__()
        self.pending, self.path = pending, path.encode()

    def render(self, request):
        request.responseHeaders.removeHeader(b"server")
        request.notifyFinish().addBoth(lambda _: request.site.access(request))
        if request.path.rstrip(b"/") == self.path:
            return self.pending.render(request)
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain")
        return b"not found\n"


class ChannelServer:
    """The channel's listener, threads and waiting room (``psc-idp ecps channel``; tests
    run it in process next to the reactor's thread, as ``serve.Listeners``)."""

    def __init__(self, app: Flask):
        settings = app.extensions["psc_idp"].settings
        self.address = settings.ecps_channel_listen
        self.pool = ThreadPool(minthreads=1, maxthreads=THREADS, name="psc-idp e-CPS channel")
        self.room = WaitingRoom(app, self.pool)
        self.site = OriginSite(ORIGIN, _Root(PendingResource(app, self.pool, self.room),
                                             pending_path(app)), settings.request_timeout)
        self.port = None

    def start(self) -> None:
        if reactor.running:
            self.port = blockingCallFromThread(reactor, listen, self.address, self.site)
        else:
            self.port = listen(self.address, self.site)
        self.pool.start()
        self.room.start()

    def stop(self) -> None:
        """From any thread but the reactor's."""
        blockingCallFromThread(reactor, self._close)
        self.pool.stop()

    def _close(self):
        stopped = DeferredList([self.port.stopListening(), self.room.close()])
        for channel in list(self.site.channels):
            channel.transport.abortConnection()
        return stopped


def serve_forever(app: Flask) -> None:
    """Serve until SIGINT or SIGTERM; waiting phones are then cut off (their app polls
    again, through nginx to another channel process or to gunicorn)."""
    setup_logging()
    raise_open_files_limit()
    server = ChannelServer(app)
    server.start()
    reactor.addSystemEventTrigger("before", "shutdown", lambda: server._close().addCallback(
        lambda _: deferToThread(server.pool.stop)))
    reactor.run()


def listen(address: str, site):
    """``unix:/path`` (mode 0660: nginx's group; a stale socket left by a crash is
    replaced) or ``host:port``."""
    if address.startswith("unix:"):
        path = Path(address.removeprefix("unix:"))
        if path.is_socket() and not _answers(path):
            path.unlink()
        return reactor.listenUNIX(str(path), site, backlog=BACKLOG, mode=0o660)
    host, _, port = address.rpartition(":")
    return reactor.listenTCP(int(port), site, BACKLOG, host.strip("[]"))


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False
