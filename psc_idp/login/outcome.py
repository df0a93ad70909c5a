"""What a login method answers: success with who and how, or failure with a reason
from a closed set (Keycloak's authenticator idea, STYLE.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Failure  # noqa: F401 (a login method's other answer)


@dataclass(frozen=True)
class Success:
    id_nat: str
    method: str  # "card" or "ecps"
    detail: str  # e.g. the card certificate's SHA-256 fingerprint
