"""The authenticated professional as the protocol layer sees it: subject, how and when
they logged in, and the grant the tokens belong to (OIDC Core §2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import current as settings


@dataclass(frozen=True)
class Subject:
    id_nat: str
    sid: str
    auth_time: int
    acr: str
    amr: list = field(default_factory=list)
    auth_mode: str = "CARD"
    grant_id: str | None = None
    #: the authorization request's nonce (PSC repeats it in access tokens)
    nonce: str | None = None
    #: the practitioner's (given names, family name) read with the code or token, ("", "")
    #: once they are no longer active; None: not read (tokens look them up)
    names: tuple[str, str] | None = None

    def get_user_id(self) -> str:
        return subject_identifier(self.id_nat)

    @classmethod
    def of(cls, row, grant_id: str | None = None, names: tuple[str, str] | None = None,
           ) -> Subject:
        """Build from any row carrying the login context (code, token, session)."""
        return cls(
            id_nat=row.id_nat, sid=row.sid, auth_time=row.auth_time, acr=row.acr,
            amr=list(row.amr), auth_mode=row.auth_mode, grant_id=grant_id,
            nonce=getattr(row, "nonce", None), names=names,
        )


def subject_identifier(id_nat: str) -> str:
    """PSC's ``sub``: ``f:<realm uuid>:<idNat>`` (psc.md §2)."""
    return f"f:{settings().realm_uuid}:{id_nat}"
