"""What a login method answers (Keycloak's authenticator idea, STYLE.md §5): success with
who, how and when — ``{id_nat, method, acr, amr, auth_time}``, all the protocol ever learns
of a login — or failure with a reason from a closed set (``errors.REASONS``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..clock import now
from ..errors import Failure  # noqa: F401 (a login method's other answer)
from ..settings import current as settings

#: amr values (RFC 8176): card = smart card + PIN; e-CPS = hardware-bound key + PIN
AMR = {"card": ["sc", "pin", "mfa"], "ecps": ["hwk", "pin", "mfa"]}


@dataclass(frozen=True)
class Success:
    id_nat: str
    method: str  # "card" or "ecps"
    detail: str  # e.g. the card certificate's SHA-256 fingerprint, the e-CPS device
    acr: str = ""
    amr: list = field(default_factory=list)
    auth_time: int = 0

    @classmethod
    def now(cls, id_nat: str, method: str, detail: str) -> Success:
        """A login by ``method`` that succeeded just now (acr: setting ``acr``)."""
        return cls(id_nat, method, detail, acr=settings().acr.get(method, "eidas1"),
                   amr=list(AMR[method]), auth_time=now())
