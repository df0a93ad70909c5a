"""A test PKI shaped like IGC-Santé TEST (psc.md §5): a root, an issuing CA for
professionals' cards and its CRL, an issuing CA for organisations' certificates (relying
parties' mTLS, RFC 8705; ``ORG AUTH_CLI``-like) and its CRL; a second, untrusted hierarchy
for attack tests; and a TLS CA with the server certificate of the embedded listeners.

Every private key here is a sandbox key, kept unencrypted under ``private/``: the cards'
keys are not among them, they are generated inside SoftHSM tokens (``sandbox.cards``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

IGC_SANTE_TEST_POLICY = x509.ObjectIdentifier("1.2.250.1.213.1.7.3.1")
ORG_CA_NAME = "TEST AC IGC-SANTE FORT ORGANISATIONS"
DAY = dt.timedelta(days=1)


def _name(cn: str, *, ou: str = "IGC-SANTE TEST") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ASIP-SANTE"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 187512751"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def card_subject(id_nat: str, family_name: str, given_name: str, title: str) -> x509.Name:
    """PSC's card subject: ``SN=<nom>+CN=<idNat>+GN=<prénom>, title=…, O=TEST, C=FR``."""
    return x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.TITLE, title)]),
        x509.RelativeDistinguishedName([
            x509.NameAttribute(NameOID.SURNAME, family_name),
            x509.NameAttribute(NameOID.COMMON_NAME, id_nat),
            x509.NameAttribute(NameOID.GIVEN_NAME, given_name),
        ]),
    ])


def org_subject(organisation: str, structure_id: str, common_name: str) -> x509.Name:
    """An organisation certificate's subject, as IGC-Santé's ``ORG AUTH_CLI`` profile
    (psc.md §10): ``CN=<service>, OU=<structure identifier>, O=<organisation>, C=FR``."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, structure_id),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@dataclass
class Authority:
    """A CA certificate with its private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def issue(self, subject: x509.Name, public_key, *, days: int = 3 * 365,
              not_before: dt.datetime | None = None, ca: bool = False,
              usage: str = "client", san: list[x509.GeneralName] | None = None,
              serial: int | None = None) -> x509.Certificate:
        start = not_before or _now() - DAY
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), False)
        )
        builder = _profile(builder, ca=ca, usage=usage, san=san)
        return builder.sign(self.key, hashes.SHA256())

    def crl(self, revoked: dict[int, dt.datetime], *, next_update_days: int = 7,
            this_update: dt.datetime | None = None) -> x509.CertificateRevocationList:
        this_update = this_update or _now() - dt.timedelta(minutes=5)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(this_update)
            .next_update(this_update + dt.timedelta(days=next_update_days))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), False)
            .add_extension(x509.CRLNumber(int(this_update.timestamp())), False)
        )
        for serial, when in revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(when).build())
        return builder.sign(self.key, hashes.SHA256())


def _profile(builder, *, ca: bool, usage: str, san):
    if ca:
        return (builder
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                .add_extension(_key_usage(cert_sign=True), True))
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    builder = builder.add_extension(_key_usage(signature=True, encipherment=usage == "server"),
                                    True)
    eku = {"client": ExtendedKeyUsageOID.CLIENT_AUTH, "server": ExtendedKeyUsageOID.SERVER_AUTH,
           "email": ExtendedKeyUsageOID.EMAIL_PROTECTION}[usage]
    builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), False)
    if usage == "client":
        builder = builder.add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(IGC_SANTE_TEST_POLICY, None)]), False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), False)
    return builder


def _key_usage(*, signature=False, encipherment=False, cert_sign=False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature, content_commitment=False, key_encipherment=encipherment,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_root(cn: str, *, ou: str = "IGC-SANTE TEST") -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn, ou=ou)
    start = _now() - DAY
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=20 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(_key_usage(cert_sign=True), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def new_intermediate(parent: Authority, cn: str, *, ou: str = "IGC-SANTE TEST") -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = parent.issue(_name(cn, ou=ou), key.public_key(), days=10 * 365, ca=True)
    return Authority(cert, key)


# --- files ---------------------------------------------------------------------------------

def pem(obj) -> bytes:
    if isinstance(obj, (x509.Certificate, x509.CertificateRevocationList)):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def save_authority(authority: Authority, directory: Path, name: str) -> None:
    (directory / f"{name}.pem").write_bytes(pem(authority.certificate))
    private = directory / "private"
    private.mkdir(mode=0o700, exist_ok=True)
    key_path = private / f"{name}.key"
    key_path.write_bytes(pem(authority.key))
    key_path.chmod(0o600)


def load_authority(directory: Path, name: str) -> Authority:
    cert = x509.load_pem_x509_certificate((directory / f"{name}.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (directory / "private" / f"{name}.key").read_bytes(), None)
    return Authority(cert, key)


@dataclass
class TestPki:
    """The sandbox PKI on disk, under ``directory``."""

    directory: Path

    @property
    def trust_anchor(self) -> Path:
        return self.directory / "root.pem"

    @property
    def issuing_ca(self) -> Path:
        return self.directory / "cards-ca.pem"

    @property
    def crl(self) -> Path:
        return self.directory / "cards-ca.crl"

    @property
    def org_ca(self) -> Path:
        """The organisations' issuing CA (``org_intermediates``), made on first use in a
        sandbox older than it."""
        if not (self.directory / "org-ca.pem").exists():
            save_authority(new_intermediate(self.authority("root"), ORG_CA_NAME),
                           self.directory, "org-ca")
            self.publish_crl("org-ca")
        return self.directory / "org-ca.pem"

    @property
    def org_crl(self) -> Path:
        self.org_ca  # noqa: B018 (made on first use)
        return self.directory / "org-ca.crl"

    @property
    def tls_ca(self) -> Path:
        return self.directory / "tls-ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "private" / "server.key"

    def authority(self, name: str = "cards-ca") -> Authority:
        return load_authority(self.directory, name)

    def _revoked_file(self, authority: str) -> Path:
        name = "revoked.json" if authority == "cards-ca" else f"{authority}-revoked.json"
        return self.directory / name

    def revoked(self, authority: str = "cards-ca") -> dict[int, dt.datetime]:
        path = self._revoked_file(authority)
        if not path.exists():
            return {}
        return {int(k): dt.datetime.fromisoformat(v)
                for k, v in json.loads(path.read_text()).items()}

    def revoke(self, serial: int, authority: str = "cards-ca") -> None:
        """Revoke a certificate of ``authority`` and publish its new CRL."""
        revoked = self.revoked(authority) | {serial: _now()}
        self._revoked_file(authority).write_text(
            json.dumps({str(k): v.isoformat() for k, v in revoked.items()}, indent=1))
        self.publish_crl(authority)

    def publish_crl(self, authority: str = "cards-ca", **kwargs) -> None:
        crl = self.authority(authority).crl(self.revoked(authority), **kwargs)
        path = self.directory / f"{authority}.crl"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem(crl))
        tmp.replace(path)


def build_pki(directory: Path, hostnames=("localhost",)) -> TestPki:
    """Create the whole sandbox PKI in ``directory`` (which must not hold one yet)."""
    directory.mkdir(parents=True, exist_ok=True)
    root = new_root("TEST AC RACINE IGC-SANTE FORT")
    cards = new_intermediate(root, "TEST AC IGC-SANTE FORT PERSONNES")
    save_authority(root, directory, "root")
    save_authority(cards, directory, "cards-ca")
    (directory / "cards-chain.pem").write_bytes(pem(cards.certificate) + pem(root.certificate))
    save_authority(new_intermediate(root, ORG_CA_NAME), directory, "org-ca")

    rogue_root = new_root("TEST AC RACINE NON RECONNUE", ou="HORS IGC-SANTE")
    rogue = new_intermediate(rogue_root, "TEST AC IGC-SANTE FORT PERSONNES",
                             ou="HORS IGC-SANTE")
    save_authority(rogue_root, directory, "rogue-root")
    save_authority(rogue, directory, "rogue-ca")

    tls_root = new_root("psc-idp sandbox TLS CA", ou="psc-idp sandbox")
    save_authority(tls_root, directory, "tls-ca")
    server_key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(h) for h in hostnames] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = tls_root.issue(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]),
        server_key.public_key(), days=825, usage="server", san=san)
    (directory / "server.pem").write_bytes(pem(server))
    (directory / "private" / "server.key").write_bytes(pem(server_key))
    (directory / "private" / "server.key").chmod(0o600)

    pki = TestPki(directory)
    pki.publish_crl()
    pki.publish_crl("org-ca")
    return pki
