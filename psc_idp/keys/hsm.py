"""The connection to a PKCS#11 token (an HSM; SoftHSM2 in the sandbox and tests): the
module loaded on first use in the serving process, one logged-in session kept open, and
reopened when the token went away and came back.

python-pkcs11 calls ``C_Initialize`` without arguments, which tells the module that the
application will not call it from several threads at once (PKCS#11 v2.40 §5.4; SoftHSM then
drops its own locks): every call is made under one process-wide lock, so one session per
token is all a process can use. A token that was removed is only seen again after
``C_Finalize`` + ``C_Initialize``, which is what a failed call triggers before one retry.
Every failure surfaces as ``KeyUnavailable``; a refused PIN is never tried again (tokens
lock after a few wrong PINs): fix ``pkcs11_pin`` and restart."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .signer import KeyUnavailable

RETRY_AFTER = 2.0  # seconds a token that failed twice in a row is left alone
_LOCK = threading.RLock()  # one PKCS#11 call at a time in this process (see above)
_LIBRARIES: dict[str, Any] = {}  # modules this process loaded
_GENERATION: dict[str, int] = {}  # per module: bumped by each C_Finalize
_TOKENS: dict[tuple[str, str, str], Hsm] = {}


def token_for(module: str, label: str, pin: str) -> Hsm:
    """The process's connection to token ``label`` of ``module`` (shared by every app)."""
    with _LOCK:
        key = (module, label, pin)
        if key not in _TOKENS:
            _TOKENS[key] = Hsm(module, label, pin)
        return _TOKENS[key]


class Hsm:
    def __init__(self, module: str, label: str, pin: str):
        self.module, self.label, self.pin = module, label, pin
        self._session: Any = None
        self._generation = -1
        self._pid = os.getpid()
        self._objects: dict[tuple[str, Any], Any] = {}
        self.mechanisms: set = set()
        self._down_until = 0.0
        self._failure = ""
        self._refused = ""

    def run(self, operation: Callable[[Any], Any]) -> Any:
        """``operation(session)`` on the logged-in session; once more on a fresh library
        view if it fails (the token may have come back since the session was opened)."""
        import pkcs11

        with _LOCK:
            self._check_usable()
            try:
                return operation(self._open())
            except pkcs11.PKCS11Error:
                self._reset()
            try:
                return operation(self._open())
            except pkcs11.NoSuchKey as exc:  # the token is there, the key is not
                raise KeyUnavailable(f"token {self.label!r}: {exc}") from exc
            except pkcs11.PKCS11Error as exc:
                self._reset()
                self._down_until = time.monotonic() + RETRY_AFTER
                self._failure = f"token {self.label!r}: {_describe(exc)}"
                raise KeyUnavailable(self._failure) from exc

    def find(self, session, kid: str, object_class) -> Any:
        """The key object labelled ``kid`` (handles are kept until the session is reset)."""
        key = (kid, object_class)
        if key not in self._objects:
            self._objects[key] = session.get_key(object_class=object_class, label=kid)
        return self._objects[key]

    def _check_usable(self) -> None:
        if self._refused:
            raise KeyUnavailable(self._refused)
        if time.monotonic() < self._down_until:
            raise KeyUnavailable(f"{self._failure} (retrying in {RETRY_AFTER:.0f} s)")

    def _open(self):
        import pkcs11

        if self._pid != os.getpid():  # forked: the parent's library state is not ours
            self._session, self._pid = None, os.getpid()
            _finalize(self.module)
        if self._session is not None and self._generation == _GENERATION.get(self.module, 0):
            return self._session
        self._session, self._objects = None, {}
        try:
            library = _LIBRARIES[self.module] = pkcs11.lib(self.module)
        except pkcs11.PKCS11Error as exc:
            raise pkcs11.GeneralError(f"module {self.module}: {_describe(exc)}") from exc
        token = library.get_token(token_label=self.label)
        self.mechanisms = set(token.slot.get_mechanisms())
        try:
            session = token.open(rw=True, user_pin=self.pin)
        except pkcs11.UserAlreadyLoggedIn:  # login is per application, not per session
            session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinLocked, pkcs11.PinExpired, pkcs11.PinInvalid,
                pkcs11.PinLenRange) as exc:
            self._refused = (f"token {self.label!r} refused the PIN ({type(exc).__name__}): "
                             "fix pkcs11_pin and restart")
            raise KeyUnavailable(self._refused) from exc
        self._session, self._generation = session, _GENERATION.get(self.module, 0)
        return session

    def _reset(self) -> None:
        """Forget the session and re-initialise the module on next use."""
        import pkcs11

        if self._session is not None:
            try:
                self._session.close()
            except pkcs11.PKCS11Error:
                pass
        self._session, self._objects = None, {}
        _finalize(self.module)


def _finalize(module: str) -> None:
    import pkcs11

    _GENERATION[module] = _GENERATION.get(module, 0) + 1
    library = _LIBRARIES.get(module)
    if library is not None:  # pkcs11.lib() initialises it again on next use
        try:
            library.finalize()
        except pkcs11.PKCS11Error:
            pass  # a module in trouble: C_Initialize on next use tells


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
