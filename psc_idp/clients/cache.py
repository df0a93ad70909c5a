"""The registered clients as protocol requests read them: from memory, each process
dropping its copies within a second of a change made anywhere.

Every change of a client (``clients``'s lifecycle functions: the CLI, the admin API and
RFC 7591/7592 all go through them) bumps the one-row ``client_version`` table in its own
transaction. A process reads that version at most once a second, on the first lookup due,
and forgets every client it holds when the version moved; the process that made the
change forgets at once. A client disabled or deleted anywhere is thus refused everywhere
within a second, without a query per request. Unknown client ids are never remembered (a
client created elsewhere works at once), and clients are read outside the caller's
transaction: only committed data is ever shared."""

from __future__ import annotations

import threading
import time

from sqlalchemy import BigInteger, Integer, select, update
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db, idp
from ..oidc.models import Client, ClientRules
from . import jwks as client_keys
from .metadata import CLIENT_ID

#: the longest a process serves a client changed elsewhere (seconds)
CHECK_INTERVAL = 1.0


class ClientVersion(db.Model):
    """One row: bumped in the transaction of every client change."""

    __tablename__ = "client_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


def find(client_id) -> CachedClient | None:
    """The client (enabled or not) as this process knows it; None for an unknown or
    malformed id."""
    return idp().clients.get(client_id)


def changed() -> None:
    """In the transaction of a client change, before its commit: tell every process."""
    db.session.execute(update(ClientVersion).where(ClientVersion.id == 1)
                       .values(version=ClientVersion.version + 1))


def forget() -> None:
    """After the commit of a client change: this process forgets at once."""
    idp().clients.forget()


#: the columns copied from a stored client
COLUMNS = tuple(column.key for column in Client.__table__.columns)
_LISTS = {"redirect_uris", "post_logout_redirect_uris", "grant_types", "compat", "contacts"}


class CachedClient(ClientRules):
    """A client as read at one moment: its columns (lists as tuples), read-only and shared
    by every thread of the process. ``jwks`` must not be modified."""

    __slots__ = (*COLUMNS, "_assertion_keys")

    def __init__(self, row):
        for key in COLUMNS:
            value = getattr(row, key)
            object.__setattr__(self, key, tuple(value or ()) if key in _LISTS else value)
        object.__setattr__(self, "_assertion_keys", None)

    def __setattr__(self, name, value):
        raise AttributeError(f"a cached client is read-only ({name})")

    def assertion_keys(self):
        """The keys that verify this client's assertions (``private_key_jwt``), imported
        once; raises as ``clients.jwks.verification_keys``."""
        if self._assertion_keys is None:
            object.__setattr__(self, "_assertion_keys",
                               client_keys.verification_keys(self.jwks))
        return self._assertion_keys


class ClientCache:
    """The clients of one app in one process (``app.extensions``)."""

    def __init__(self, interval: float = CHECK_INTERVAL):
        self.interval = interval
        self._entries: dict[str, CachedClient] = {}
        self._version: int | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def get(self, client_id) -> CachedClient | None:
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            return None
        self._check_version()
        entries = self._entries
        found = entries.get(client_id)
        if found is None:
            row = _read(select(Client.__table__).where(Client.client_id == client_id))
            if row is None:
                return None
            found = CachedClient(row)
            if self._version is not None:  # no version row: nothing is kept
                # into the dict of the version checked: a newer version replaced it
                entries[client_id] = found
        return found

    def forget(self) -> None:
        with self._lock:
            self._entries, self._checked = {}, float("-inf")

    def _check_version(self) -> None:
        if time.monotonic() - self._checked < self.interval:
            return
        with self._lock:
            started = time.monotonic()
            if started - self._checked < self.interval:
                return  # another thread checked meanwhile
            row = _read(select(ClientVersion.version).where(ClientVersion.id == 1))
            version = row.version if row is not None else None
            if version != self._version:
                self._entries, self._version = {}, version
            self._checked = started  # changes committed after ``started`` are seen next


def _read(statement):
    """One row, read on a connection of its own outside any transaction."""
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection.execute(statement).first()
