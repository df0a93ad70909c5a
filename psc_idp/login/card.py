"""CPS card login: the professional proves possession of their card through TLS
client-certificate authentication on the card origin (psc.md §5); the certificate is
validated (chain, usage, revocation) and its idNat looked up in the directory."""

from __future__ import annotations

from .. import audit, ops
from ..cards.source import UntrustedCertificateSource, client_certificate
from ..cards.verify import CardRejected
from ..directory.links import successor
from ..directory.lookup import find_active
from ..extensions import idp
from ..net import from_proxy
from ..settings import current
from .outcome import Failure, Success

NO_CERTIFICATE = Failure("no_certificate")
UNKNOWN = Failure("unknown_professional")


def authenticate(req) -> Success | Failure:
    """Authenticate the card that the TLS layer (or the trusted proxy) presented."""
    outcome = _authenticate(req)
    if isinstance(outcome, Failure):  # anyone can fail anonymously, as often as they like
        audit.record_throttled("login", "failure", method="card", reason=outcome.reason,
                               detail=outcome.detail[:200])
        ops.login("card", outcome.reason)
    return outcome


def _authenticate(req) -> Success | Failure:
    settings = current()
    try:
        pem = client_certificate(req.environ, from_proxy=from_proxy(req.environ, settings),
                                 header=settings.client_cert_header)
    except UntrustedCertificateSource as exc:
        return Failure(NO_CERTIFICATE.reason, f"certificate header from untrusted {exc}")
    if pem is None:
        return NO_CERTIFICATE
    try:
        identity = idp().cards.verify(pem)
    except CardRejected as exc:
        return Failure(exc.reason, exc.detail)
    id_nat = identity.id_nat
    if find_active(id_nat) is None:
        # a card issued under an idNat that left the directory for a linked one (ADELI →
        # RPPS, directory.links): the professional is who they became
        id_nat = successor(identity.id_nat)
        if id_nat is None:
            return Failure(UNKNOWN.reason, identity.id_nat)
    return Success.now(id_nat, "card", identity.fingerprint)
