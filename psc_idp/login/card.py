"""CPS card login: the professional proves possession of their card through TLS
client-certificate authentication on the card origin (psc.md §5); the certificate is
validated and its holder found in the directory (``cards.identify``)."""

from __future__ import annotations

from .. import audit, ops
from ..cards.identify import holder
from ..cards.source import UntrustedCertificateSource, client_certificate
from ..net import from_proxy
from ..settings import current
from .outcome import Failure, Success

NO_CERTIFICATE = Failure("no_certificate")


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
    found = holder(pem)
    if isinstance(found, Failure):
        return found
    return Success.now(found.id_nat, "card", found.card.fingerprint)
