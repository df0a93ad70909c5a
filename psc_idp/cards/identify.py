"""From a card certificate to the practitioner who holds it (psc.md §5): the certificate
validated by ``verify`` (chain, validity, usage, revocation), then its idNat active in the
directory — or the idNat it was linked to (ADELI → RPPS, ``directory.links``). The one
path every use of a card takes: the TLS card login and the CIBA card channel."""

from __future__ import annotations

from dataclasses import dataclass

from ..directory.links import successor
from ..directory.lookup import find_active
from ..errors import Failure
from ..extensions import idp
from .verify import CardIdentity, CardRejected

UNKNOWN = "unknown_professional"


@dataclass(frozen=True)
class Holder:
    """An active practitioner (``id_nat``, the successor's when the card's idNat was
    linked) and the card they presented."""

    id_nat: str
    card: CardIdentity


def holder(pem: str | bytes) -> Holder | Failure:
    """The active practitioner holding the card of certificate ``pem``, or why not (a
    ``Failure`` whose reason is one of ``errors.REASONS``)."""
    try:
        identity = idp().cards.verify(pem)
    except CardRejected as exc:
        return Failure(exc.reason, exc.detail)
    if find_active(identity.id_nat) is not None:
        return Holder(identity.id_nat, identity)
    # a card issued under an idNat that left the directory for a linked one: the
    # professional is who they became
    id_nat = successor(identity.id_nat)
    if id_nat is None:
        return Failure(UNKNOWN, identity.id_nat)
    return Holder(id_nat, identity)
