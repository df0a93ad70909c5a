"""Build the verifiers of client certificates from the settings: CPS cards (card login) and
IGC-Santé organisation certificates (``tls_client_auth``, RFC 8705 §2.1)."""

from __future__ import annotations

from ..settings import Settings
from .crl import CrlStore
from .verify import CardVerifier, load_certificates


def build_verifier(settings: Settings) -> CardVerifier:
    return _verifier(settings, settings.card_trust_anchors, settings.card_intermediates,
                     settings.card_crls)


def _verifier(settings: Settings, anchor_files, intermediate_files, crl_files) -> CardVerifier:
    anchors = load_certificates(anchor_files)
    intermediates = load_certificates(intermediate_files)
    crls = CrlStore(crl_files, anchors + intermediates,
                    refresh_interval=settings.crl_refresh_interval,
                    grace=settings.crl_grace, policy=settings.crl_stale_policy)
    return CardVerifier(anchors, intermediates, crls, stale_policy=settings.crl_stale_policy)


def build_org_verifier(settings: Settings) -> CardVerifier | None:
    """The organisation certificates' verifier; None without ``org_trust_anchors``."""
    if not settings.org_trust_anchors:
        return None
    return _verifier(settings, settings.org_trust_anchors, settings.org_intermediates,
                     settings.org_crls)
