"""Reading an extract ahead of the writes: the next batches of practitioners are parsed in a
thread while the database writes the current one (the drivers release the GIL while they
wait for it), at most ``DEPTH`` batches ahead, so memory stays bounded by a few batches."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

#: items computed ahead of the one being used, at most
DEPTH = 2
#: how often a producer blocked on a full queue checks whether it is still wanted
_POLL = 0.1

T = TypeVar("T")


@contextmanager
def read_ahead(items: Iterable[T], depth: int = DEPTH) -> Iterator[Iterator[T]]:
    """The items of ``items``, computed in a thread up to ``depth`` ahead; an exception
    the thread meets is raised where the items are used, at that point. Leaving the block
    early stops the thread (after the item it is computing) and closes ``items``."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(ready, (True, item), stop):
                    return
            _put(ready, (False, None), stop)
        except BaseException as exc:  # handed to the consumer, which raises it
            _put(ready, (False, exc), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        while True:
            more, value = ready.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value

    thread = threading.Thread(target=produce, name="psc-idp-read-ahead", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


def _put(ready: queue.Queue, item: tuple, stop: threading.Event) -> bool:
    """Queue ``item`` unless the consumer has gone; whether it was queued."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False
