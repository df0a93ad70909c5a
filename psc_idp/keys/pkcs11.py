"""Signing keys in a PKCS#11 token: the key pair is generated in the token, sensitive and
never extractable (PKCS#11 v2.40 §4.9: CKA_SENSITIVE, not CKA_EXTRACTABLE); psc-idp only
asks the token to sign — RS256 with CKM_SHA256_RSA_PKCS, PS256 with CKM_SHA256_RSA_PKCS_PSS,
ES256 with CKM_ECDSA(_SHA256), whose raw r || s output is already the JWS form (RFC 7518
§3.4). The public key is read once, at generation, and published from ``keys.json``: the
JWKS never needs the token."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .hsm import Hsm
from .signer import SUPPORTED_ALGS, _public_jwk


class TokenKeyError(Exception):
    """The token cannot hold a key for this algorithm."""


def _mechanisms(alg: str, available: set):
    """(mechanism, parameters, whether the data must be hashed here) for ``alg``."""
    from pkcs11 import MGF, Mechanism

    if alg == "RS256":
        return Mechanism.SHA256_RSA_PKCS, None, False
    if alg == "PS256":
        return Mechanism.SHA256_RSA_PKCS_PSS, (Mechanism.SHA256, MGF.SHA256, 32), False
    if Mechanism.ECDSA_SHA256 in available:
        return Mechanism.ECDSA_SHA256, None, False
    return Mechanism.ECDSA, None, True  # SoftHSM 2.6: sign a SHA-256 digest made here


class Pkcs11Signer:
    """The ``Signer`` of the key pair labelled ``kid`` in the token."""

    def __init__(self, kid: str, alg: str, hsm: Hsm, jwk: dict | None = None):
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported signing algorithm {alg}")
        self.kid, self.alg, self.hsm, self._jwk = kid, alg, hsm, jwk

    def public_jwk(self) -> dict:
        if self._jwk is None:  # an index entry written without it: ask the token once
            self._jwk = self.hsm.run(lambda session: _read_public_jwk(
                self.hsm, session, self.kid, self.alg))
        return dict(self._jwk)

    def sign(self, data: bytes) -> bytes:
        return self.hsm.run(self._sign(data))

    def _sign(self, data: bytes):
        def operation(session):
            from pkcs11 import ObjectClass

            mechanism, params, prehash = _mechanisms(self.alg, self.hsm.mechanisms)
            key = self.hsm.find(session, self.kid, ObjectClass.PRIVATE_KEY)
            payload = hashlib.sha256(data).digest() if prehash else data
            return key.sign(payload, mechanism=mechanism, mechanism_param=params)
        return operation

    def private_attributes(self) -> dict[str, bool]:
        """What the token says of the private key (it never gives its value)."""
        from pkcs11 import Attribute, ObjectClass

        names = {"sensitive": Attribute.SENSITIVE, "extractable": Attribute.EXTRACTABLE,
                 "always_sensitive": Attribute.ALWAYS_SENSITIVE,
                 "never_extractable": Attribute.NEVER_EXTRACTABLE, "local": Attribute.LOCAL}

        def read(session):
            key = self.hsm.find(session, self.kid, ObjectClass.PRIVATE_KEY)
            return {name: bool(key[attribute]) for name, attribute in names.items()}
        return self.hsm.run(read)


def create_token_key(hsm: Hsm, kid: str, alg: str) -> dict:
    """Generate a key pair labelled ``kid`` in the token; returns its index fields (the
    public JWK). Raises ``TokenKeyError`` when the token lacks the mechanism."""
    return hsm.run(lambda session: _generate(hsm, session, kid, alg))


def destroy_token_key(hsm: Hsm, kid: str) -> None:
    """Destroy both halves of the key pair labelled ``kid`` (a key no longer published)."""
    from pkcs11 import Attribute

    def destroy(session):
        for obj in list(session.get_objects({Attribute.LABEL: kid})):
            obj.destroy()
    hsm.run(destroy)


def _generate(hsm: Hsm, session, kid: str, alg: str) -> dict:
    from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag
    from pkcs11.util.ec import encode_named_curve_parameters

    needed = {"RS256": Mechanism.SHA256_RSA_PKCS, "PS256": Mechanism.SHA256_RSA_PKCS_PSS,
              "ES256": Mechanism.ECDSA}[alg]
    if needed not in hsm.mechanisms and not (alg == "ES256" and
                                             Mechanism.ECDSA_SHA256 in hsm.mechanisms):
        raise TokenKeyError(f"token {hsm.label!r} does not support {needed.name} ({alg})")
    private = {Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
               Attribute.EXTRACTABLE: False}
    options = {"store": True, "label": kid, "id": kid.encode(), "private_template": private,
               "public_template": {Attribute.TOKEN: True},
               "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY}
    if alg == "ES256":
        params = session.create_domain_parameters(KeyType.EC, {
            Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        params.generate_keypair(**options)
    else:
        session.generate_keypair(KeyType.RSA, 2048, **options)
    return {"jwk": _read_public_jwk(hsm, session, kid, alg)}


def _read_public_jwk(hsm: Hsm, session, kid: str, alg: str) -> dict:
    from asn1crypto.core import OctetString
    from pkcs11 import Attribute, ObjectClass

    key = hsm.find(session, kid, ObjectClass.PUBLIC_KEY)
    if alg == "ES256":  # CKA_EC_POINT: a DER OCTET STRING around the uncompressed point
        point = OctetString.load(key[Attribute.EC_POINT]).native
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    else:
        public = rsa.RSAPublicNumbers(int.from_bytes(key[Attribute.PUBLIC_EXPONENT], "big"),
                                      int.from_bytes(key[Attribute.MODULUS], "big")
                                      ).public_key()
    return _public_jwk(kid, alg, public)

