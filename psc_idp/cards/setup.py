"""Build the verifiers of client certificates from the settings: CPS cards (card login) and
IGC-Santé organisation certificates (``tls_client_auth``, RFC 8705 §2.1)."""

from __future__ import annotations

from ..settings import Settings
from .crl import CrlStore
from .verify import CardVerifier, load_certificates


def build_verifier(settings: Settings) -> CardVerifier:
    anchors = load_certificates(settings.card_trust_anchors)
    intermediates = load_certificates(settings.card_intermediates)
    crls = CrlStore(settings.card_crls, anchors + intermediates,
                    refresh_interval=settings.crl_refresh_interval,
                    grace=settings.crl_grace, policy=settings.crl_stale_policy)
    return CardVerifier(anchors, intermediates, crls, stale_policy=settings.crl_stale_policy)


def build_org_verifier(settings: Settings) -> CardVerifier | None:
    """The organisation certificates' verifier; None without ``org_trust_anchors``."""
    if not settings.org_trust_anchors:
        return None
    anchors = load_certificates(settings.org_trust_anchors)
    intermediates = load_certificates(settings.org_intermediates)
    crls = CrlStore(settings.org_crls, anchors + intermediates,
                    refresh_interval=settings.crl_refresh_interval,
                    grace=settings.crl_grace, policy=settings.crl_stale_policy)
    return CardVerifier(anchors, intermediates, crls, stale_policy=settings.crl_stale_policy)
