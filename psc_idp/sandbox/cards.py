"""Test CPS cards as SoftHSM2 tokens: one token per card, its RSA key pair generated **on
the token** (sensitive, never extractable), the card certificate with PSC's subject layout
written back to the token, and a user PIN — what a card reader offers a browser.

Token set-up uses ``softhsm2-util`` and key generation runs python-pkcs11 in a child
process: a PKCS#11 library is initialised once per process and only then lists its tokens,
so each step gets a fresh view of the token directory."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from glob import glob
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .pki import TestPki, card_subject, pem

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so",
                   "/usr/lib/*/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so")
ENGINE_PATHS = ("/usr/lib/*/engines-3/pkcs11.so", "/usr/lib/*/engines-3/libpkcs11.so")
USER_PIN = "1234"
SO_PIN = "12345678"
KEY_LABEL = "auth"


class SandboxError(Exception):
    """A sandbox step could not run (missing tool, SoftHSM failure)."""


def _first(patterns) -> str:
    for pattern in patterns:
        found = sorted(glob(pattern))
        if found:
            return found[0]
    raise SandboxError(f"not found: {' or '.join(patterns)} (install softhsm2 and "
                       "libengine-pkcs11-openssl)")


def softhsm_module() -> str:
    return os.environ.get("PSC_IDP_PKCS11_MODULE") or _first(SOFTHSM_MODULES)


@dataclass
class Card:
    """A provisioned test card: the token label, the holder and the certificate."""

    label: str
    id_nat: str
    family_name: str
    given_name: str
    title: str
    serial: int
    certificate: str  # path of the certificate PEM (a copy of what the token holds)
    note: str = ""

    @property
    def pkcs11_uri(self) -> str:
        return f"pkcs11:token={self.label};object={KEY_LABEL};type=private"


class SoftHsm:
    """A SoftHSM2 token directory with its own configuration file."""

    def __init__(self, directory: Path):
        self.directory = Path(directory).resolve()
        self.conf = self.directory / "softhsm2.conf"
        self.tokens = self.directory / "tokens"
        self.openssl_conf = self.directory / "openssl-pkcs11.cnf"
        self.index = self.directory / "cards.json"

    def create(self) -> SoftHsm:
        self.tokens.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(f"directories.tokendir = {self.tokens}\n"
                             "objectstore.backend = file\nlog.level = ERROR\n")
        self.openssl_conf.write_text(OPENSSL_CONF.format(
            engine=_first(ENGINE_PATHS), module=softhsm_module()))
        if not self.index.exists():
            self.index.write_text("[]")
        return self

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def curl_env(self) -> dict[str, str]:
        return {**self.env(), "OPENSSL_CONF": str(self.openssl_conf)}

    def cards(self) -> list[Card]:
        return [Card(**c) for c in json.loads(self.index.read_text())]

    def card(self, label: str) -> Card:
        for card in self.cards():
            if card.label == label:
                return card
        raise SandboxError(f"no test card labelled {label!r} in {self.directory}")

    def _run(self, *argv: str) -> str:
        try:
            done = subprocess.run(argv, env=self.env(), capture_output=True, text=True,
                                  check=False, timeout=120)
        except FileNotFoundError as exc:
            raise SandboxError(f"{argv[0]} not found: install softhsm2") from exc
        if done.returncode:
            raise SandboxError(f"{' '.join(argv[:2])}: {done.stderr.strip() or done.stdout}")
        return done.stdout

    def provision(self, pki: TestPki, *, label: str, id_nat: str, family_name: str,
                  given_name: str, title: str, authority: str = "cards-ca",
                  not_before: dt.datetime | None = None, days: int = 3 * 365,
                  note: str = "", pin: str = USER_PIN) -> Card:
        """Initialise a token, generate the card key on it, issue and store the certificate."""
        if any(c.label == label for c in self.cards()):
            raise SandboxError(f"a test card labelled {label!r} already exists")
        public_key = self.new_token(label, pin)
        certificate = pki.authority(authority).issue(
            card_subject(id_nat, family_name, given_name, title), public_key,
            days=days, not_before=not_before)
        path = self.store_certificate(label, pin, certificate)
        card = Card(label, id_nat, family_name, given_name, title, certificate.serial_number,
                    str(path), note)
        self.index.write_text(json.dumps([asdict(c) for c in [*self.cards(), card]], indent=1))
        return card

    def new_token(self, label: str, pin: str = USER_PIN):
        """A new token ``label`` with an RSA key pair generated on it; its public key."""
        self._run(shutil.which("softhsm2-util") or "softhsm2-util", "--init-token", "--free",
                  "--label", label, "--so-pin", SO_PIN, "--pin", pin)
        public_pem = self._run(sys.executable, "-m", "psc_idp.sandbox.cards", "keygen",
                               label, pin)
        return serialization.load_pem_public_key(public_pem.encode())

    def store_certificate(self, label: str, pin: str, certificate) -> Path:
        """Write ``certificate`` to the token and beside it (``<label>.pem``)."""
        path = self.directory / f"{label}.pem"
        path.write_bytes(pem(certificate))
        self._run(sys.executable, "-m", "psc_idp.sandbox.cards", "store-cert", label, pin,
                  str(path))
        return path


OPENSSL_CONF = """\
# OpenSSL configuration that lets curl use the test cards through PKCS#11 (SoftHSM2).
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = {engine}
MODULE_PATH = {module}
init = 0
"""


# --- child-process steps (python-pkcs11) -------------------------------------------------

def _session(label: str, pin: str):
    import pkcs11

    token = pkcs11.lib(softhsm_module()).get_token(token_label=label)
    return token.open(rw=True, user_pin=pin)


def _keygen(label: str, pin: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
    from pkcs11 import Attribute, KeyType

    with _session(label, pin) as session:
        public, _private = session.generate_keypair(
            KeyType.RSA, 2048, id=b"\x01", label=KEY_LABEL, store=True,
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                              Attribute.SIGN: True, Attribute.DECRYPT: True})
        numbers = RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                                   int.from_bytes(public[Attribute.MODULUS], "big"))
    return numbers.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _store_certificate(label: str, pin: str, path: str) -> None:
    from pkcs11 import Attribute, CertificateType, ObjectClass

    certificate = x509.load_pem_x509_certificate(Path(path).read_bytes())
    with _session(label, pin) as session:
        session.create_object({
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True, Attribute.LABEL: KEY_LABEL, Attribute.ID: b"\x01",
            Attribute.SUBJECT: certificate.subject.public_bytes(),
            Attribute.ISSUER: certificate.issuer.public_bytes(),
            Attribute.SERIAL_NUMBER: certificate.serial_number.to_bytes(20, "big").lstrip(
                b"\0"),
            Attribute.VALUE: certificate.public_bytes(serialization.Encoding.DER),
        })


if __name__ == "__main__":
    step, *args = sys.argv[1:]
    if step == "keygen":
        sys.stdout.write(_keygen(*args))
    elif step == "store-cert":
        _store_certificate(*args)
    else:
        sys.exit(f"unknown step {step}")
