"""Organisation certificates of relying parties for mTLS (RFC 8705), in SoftHSM tokens as
the test cards: the key pair generated **on the token**, the certificate issued by the
sandbox's organisations CA with IGC-Santé's ``ORG AUTH_CLI`` subject (``pki.org_subject``:
``OU`` the structure identifier) for ``tls_client_auth``, or self-signed by the token's key
(OpenSSL's PKCS#11 engine) for ``self_signed_tls_client_auth``."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import RSAKey

from .cards import KEY_LABEL, USER_PIN, SandboxError, SoftHsm
from .pki import TestPki, org_subject

#: the structure identifier of a FINESS number (IGC-Santé: type 1, then the FINESS)
FINESS_PREFIX = "1"


@dataclass
class OrgCertificate:
    """A relying party's certificate: its token, its subject, its file."""

    label: str
    client_id: str
    subject_dn: str
    serial: int
    certificate: str  # path of the certificate PEM (a copy of what the token holds)
    self_signed: bool = False

    @property
    def pkcs11_uri(self) -> str:
        return f"pkcs11:token={self.label};object={KEY_LABEL};type=private"

    def jwks(self) -> dict:
        """The public key to register for ``self_signed_tls_client_auth`` (RFC 8705
        §2.2.2), with the certificate in ``x5c``."""
        cert = x509.load_pem_x509_certificate(Path(self.certificate).read_bytes())
        key = RSAKey.import_key(cert.public_key()).as_dict(private=False)
        der = cert.public_bytes(serialization.Encoding.DER)
        return {"keys": [{**key, "use": "sig", "alg": "RS256",
                          "x5c": [base64.b64encode(der).decode("ascii")]}]}


def _index(hsm: SoftHsm) -> Path:
    return hsm.directory / "orgs.json"


def certificates(hsm: SoftHsm) -> list[OrgCertificate]:
    path = _index(hsm)
    return [OrgCertificate(**c) for c in json.loads(path.read_text())] if path.exists() else []


def _remember(hsm: SoftHsm, org: OrgCertificate) -> OrgCertificate:
    _index(hsm).write_text(json.dumps([asdict(c) for c in [*certificates(hsm), org]], indent=1))
    return org


def _check_label(hsm: SoftHsm, label: str) -> None:
    if any(c.label == label for c in certificates(hsm)) or \
            any(c.label == label for c in hsm.cards()):
        raise SandboxError(f"a token labelled {label!r} already exists")


def mint(hsm: SoftHsm, pki: TestPki, *, label: str, client_id: str, organisation: str,
         structure_id: str, common_name: str | None = None, authority: str = "org-ca",
         pin: str = USER_PIN) -> OrgCertificate:
    """A token ``label`` holding a key and an organisation certificate of ``authority``
    (``org-ca``; ``rogue-ca``: outside the trust anchors) for ``client_id``."""
    _check_label(hsm, label)
    if authority == "org-ca":
        pki.org_ca  # noqa: B018 (a sandbox older than the organisations CA gets it)
    public_key = hsm.new_token(label, pin)
    certificate = pki.authority(authority).issue(
        org_subject(organisation, structure_id, common_name or client_id), public_key)
    path = hsm.store_certificate(label, pin, certificate)
    return _remember(hsm, OrgCertificate(label, client_id, certificate.subject.rfc4514_string(),
                                         certificate.serial_number, str(path)))


def self_signed(hsm: SoftHsm, *, label: str, client_id: str, pin: str = USER_PIN,
                days: int = 365) -> OrgCertificate:
    """A token ``label`` holding a key and a certificate that key signed itself."""
    _check_label(hsm, label)
    hsm.new_token(label, pin)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cert.pem"
        key = f"pkcs11:token={label};object={KEY_LABEL};type=private;pin-value={pin}"
        done = subprocess.run(
            ["openssl", "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine",
             "-key", key, "-sha256", "-days", str(days), "-subj", f"/CN={client_id}",
             "-addext", "extendedKeyUsage=clientAuth", "-out", str(out)],
            env=hsm.curl_env(), capture_output=True, text=True, timeout=60, check=False)
        if done.returncode:
            raise SandboxError(f"openssl req: {done.stderr.strip()[-500:]}")
        certificate = x509.load_pem_x509_certificate(out.read_bytes())
    path = hsm.store_certificate(label, pin, certificate)
    return _remember(hsm, OrgCertificate(label, client_id, certificate.subject.rfc4514_string(),
                                         certificate.serial_number, str(path), True))
