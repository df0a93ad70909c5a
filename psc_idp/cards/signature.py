"""A signature made by a CPS card's key (the CIBA card channel's proof of possession,
psc.md §7): RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2, PKCS#11 ``CKM_SHA256_RSA_PKCS``),
checked with the public key of a certificate that already passed the card validation
(``identify.holder``)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

#: smaller RSA keys are refused whatever their certificate says
MIN_RSA_BITS = 2048


def verifies(certificate_pem: str | bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``message`` was made by the key of the certificate."""
    pem = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        return False
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS \
            or len(signature) != (key.key_size + 7) // 8:
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
