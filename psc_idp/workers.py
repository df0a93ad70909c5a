"""Background work of a serving process (the audit sequencer, the back-channel logout
sender): one thread per process and per kind, started once (a forked worker starts its own),
a round every ``interval`` seconds in an app context, and a failing step (the database or the
HSM away) logged once when it starts failing and once when it works again."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from flask import Flask

from .extensions import db

log = logging.getLogger("psc_idp")
_STARTING = threading.Lock()  # two request threads of a new process start one worker


class Worker:
    """A periodic thread; subclasses say what a round does (``round``) and how its log lines
    begin (``label``)."""

    label = "worker"
    log = log  # where its lines go

    def __init__(self, app: Flask, interval: float):
        self.app, self.interval, self.pid = app, interval, os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.label.replace(" ", "-"),
                                        daemon=True)
        self._failing: dict[str, bool] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    @property
    def alive(self) -> bool:
        return self.pid == os.getpid() and self._thread.is_alive()

    def round(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self.app.app_context():
                try:
                    self.round()
                finally:
                    db.session.remove()

    def step(self, name: str, action: Callable):
        """``action()``, or None when it fails (tried again next round)."""
        try:
            result = action()
        except Exception as exc:  # the database or the HSM away: try again next round
            if not self._failing.get(name):
                self.log.warning("%s: %s failed, retrying every %s s: %s", self.label, name,
                                 self.interval, exc)
            self._failing[name] = True
            return None
        if self._failing.pop(name, False):
            self.log.warning("%s: %s works again", self.label, name)
        return result


def start(app: Flask, key: str, interval: float, make: Callable[[Flask, float], Worker]):
    """This process's worker ``key`` for ``app`` (started once; none when ``interval`` is 0).
    Cheap once it runs: ``psc_idp.wsgi`` calls it before every request."""
    running = app.extensions.get(key)
    if interval <= 0 or running is not None and running.alive:
        return running
    with _STARTING:
        running = app.extensions.get(key)
        if running is not None and running.alive:
            return running
        worker = app.extensions[key] = make(app, interval)
        worker.start()
        return worker


def stop(app: Flask, key: str) -> None:
    worker = app.extensions.pop(key, None)
    if worker is not None:
        worker.stop()
