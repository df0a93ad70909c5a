"""Validation of a CPS card certificate: path building and chain validation to the
configured trust anchors by ``cryptography.x509.verification`` (validity, basic
constraints, key usage, extended key usage ``clientAuth``), then revocation from the
cached CRLs, then the idNat from the subject CN (psc.md §5)."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .crl import CrlStore

log = logging.getLogger("psc_idp.cards")

#: the reasons a card is refused (errors.REASONS says each to the professional)
REASONS = ("malformed", "expired", "not_yet_valid", "untrusted", "wrong_usage", "revoked",
           "revocation_unknown", "no_id_nat")


# Web PKI end-entity rules, except that a card certificate need not carry a
# subjectAltName: the professional is named in the subject (psc.md §5).
CARD_POLICY = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None)


class CardRejected(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        assert reason in REASONS
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class CardIdentity:
    id_nat: str
    family_name: str
    given_name: str
    title: str
    serial: int
    issuer: str
    fingerprint: str  # SHA-256 of the certificate, hex
    not_after: dt.datetime


class CardVerifier:
    def __init__(self, anchors: list[x509.Certificate], intermediates: list[x509.Certificate],
                 crls: CrlStore, *, stale_policy: str = "fail_closed"):
        self.store = verification.Store(anchors) if anchors else None
        self.intermediates = intermediates
        self.crls = crls
        self.stale_policy = stale_policy

    def verify(self, pem: str | bytes, at: dt.datetime | None = None) -> CardIdentity:
        """The holder of a valid, unrevoked card certificate, or ``CardRejected``."""
        return identity(self.certificate(pem, at))

    def certificate(self, pem: str | bytes, at: dt.datetime | None = None
                    ) -> x509.Certificate:
        """The certificate, once valid, for client authentication, chained to the trust
        anchors and unrevoked; or ``CardRejected``. An IGC-Santé organisation certificate
        (``oidc.mtls``) is checked the same way, by a verifier of its own anchors."""
        at = at or dt.datetime.now(dt.UTC)
        try:
            leaf = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
        except ValueError as exc:
            raise CardRejected("malformed", str(exc)) from exc
        if leaf.not_valid_after_utc < at:
            raise CardRejected("expired", f"not after {leaf.not_valid_after_utc:%Y-%m-%d}")
        if leaf.not_valid_before_utc > at:
            raise CardRejected("not_yet_valid", f"not before {leaf.not_valid_before_utc}")
        # usage first: the chain validator would refuse a non-clientAuth EKU too, but as an
        # untrusted chain, which tells the professional the wrong thing
        self._check_usage(leaf)
        chain = self._chain(leaf, at)
        for certificate in chain[:-1]:
            self._check_revocation(certificate, at, leaf=certificate is chain[0])
        return leaf

    def _chain(self, leaf: x509.Certificate, at: dt.datetime) -> list[x509.Certificate]:
        if self.store is None:
            raise CardRejected("untrusted", "no trust anchor is configured")
        verifier = (verification.PolicyBuilder().store(self.store).time(at)
                    .max_chain_depth(4)
                    .extension_policies(ca_policy=verification.ExtensionPolicy
                                        .webpki_defaults_ca(), ee_policy=CARD_POLICY)
                    .build_client_verifier())
        try:
            return verifier.verify(leaf, self.intermediates).chain
        except verification.VerificationError as exc:
            raise CardRejected("untrusted", str(exc)) from exc

    @staticmethod
    def _check_usage(leaf: x509.Certificate) -> None:
        # The verifier accepts an end-entity certificate without EKU; a card must say it.
        try:
            eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound as exc:
            raise CardRejected("wrong_usage", str(exc)) from exc
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku or not usage.digital_signature:
            raise CardRejected("wrong_usage", "clientAuth and digitalSignature are required")

    def _check_revocation(self, certificate: x509.Certificate, at: dt.datetime,
                          leaf: bool) -> None:
        status = self.crls.status(certificate, at.timestamp())
        if status == "revoked":
            raise CardRejected("revoked", f"serial {certificate.serial_number:x}")
        if status == "good" or (status == "unknown" and not leaf):
            return  # CA certificates are checked when their issuer's CRL is configured
        if self.stale_policy == "fail_open":
            log.warning("card accepted with %s revocation status (fail_open): %s", status,
                        certificate.issuer.rfc4514_string())
            return
        raise CardRejected("revocation_unknown",
                           f"{status} CRL for {certificate.issuer.rfc4514_string()}")


def identity(leaf: x509.Certificate) -> CardIdentity:
    def first(oid) -> str:
        values = leaf.subject.get_attributes_for_oid(oid)
        return str(values[0].value).strip() if values else ""

    id_nat = first(NameOID.COMMON_NAME)
    if not id_nat or not id_nat.isascii() or " " in id_nat:
        raise CardRejected("no_id_nat", leaf.subject.rfc4514_string())
    der = leaf.public_bytes(serialization.Encoding.DER)
    return CardIdentity(
        id_nat=id_nat, family_name=first(NameOID.SURNAME), given_name=first(NameOID.GIVEN_NAME),
        title=first(NameOID.TITLE), serial=leaf.serial_number,
        issuer=leaf.issuer.rfc4514_string(), fingerprint=hashlib.sha256(der).hexdigest(),
        not_after=leaf.not_valid_after_utc,
    )


def load_certificates(paths) -> list[x509.Certificate]:
    certificates = []
    for path in paths:
        with open(path, "rb") as handle:
            certificates.extend(x509.load_pem_x509_certificates(handle.read()))
    return certificates
