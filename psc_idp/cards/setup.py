"""Build the card verifier from the settings."""

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
