"""Signing keys in a PKCS#11 token (an HSM; SoftHSM2 in the sandbox and tests): the key pair
is generated in the token, sensitive and never extractable; psc-idp only asks the token to
sign. The library is opened once per process (PKCS#11 allows one initialisation), sessions
are opened per signature so that a token that went away and came back is used again without
a restart; any token error surfaces as ``KeyUnavailable``."""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .signer import SUPPORTED_ALGS, _public_jwk


class KeyUnavailable(Exception):
    """The signing key cannot be used right now (HSM unreachable, token removed, PIN...)."""


_LIBS: dict[str, object] = {}
_LOCK = threading.RLock()


def library(module: str):
    import pkcs11

    with _LOCK:
        if module not in _LIBS:
            try:
                _LIBS[module] = pkcs11.lib(module)
            except Exception as exc:  # any loader error: the HSM is not usable
                raise KeyUnavailable(f"PKCS#11 module {module}: {exc}") from exc
        return _LIBS[module]


class Token:
    """A PKCS#11 token holding signing keys, addressed by label, with the user PIN."""

    def __init__(self, module: str, label: str, pin: str):
        self.module, self.label, self.pin = module, label, pin

    def session(self):
        """A logged-in session. After a failure the library is re-initialised once (the
        PKCS#11 way to see a token that went away and came back) before giving up."""
        import pkcs11

        for attempt in (1, 2):
            try:
                token = library(self.module).get_token(token_label=self.label)
                return token.open(user_pin=self.pin, rw=True)
            except (pkcs11.PKCS11Error, RuntimeError) as exc:
                if attempt == 2:
                    raise KeyUnavailable(f"token {self.label!r}: {type(exc).__name__} "
                                         f"{exc}") from exc
                with _LOCK:
                    try:
                        library(self.module).reinitialize()
                    except pkcs11.PKCS11Error:
                        pass

    def generate(self, kid: str, alg: str) -> None:
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                   Attribute.SIGN: True, Attribute.TOKEN: True}
        with self.session() as session:
            if alg == "ES256":
                params = session.create_domain_parameters(KeyType.EC, {
                    Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                    local=True)
                params.generate_keypair(store=True, label=kid, id=kid.encode(),
                                        private_template=private)
            else:
                session.generate_keypair(KeyType.RSA, 2048, store=True, label=kid,
                                         id=kid.encode(), private_template=private)


class Pkcs11Signer:
    """The ``Signer`` of a key pair stored in ``token`` under the label ``kid``."""

    def __init__(self, kid: str, alg: str, token: Token):
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported signing algorithm {alg}")
        self.kid, self.alg, self.token = kid, alg, token
        self._jwk = None

    def public_jwk(self) -> dict:
        if self._jwk is None:
            self._jwk = _public_jwk(self.kid, self.alg, self._public_key())
        return dict(self._jwk)

    def _public_key(self):
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        with self.token.session() as session:
            try:
                key = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=self.kid)
                if self.alg == "ES256":
                    from asn1crypto.core import OctetString

                    # CKA_EC_POINT: DER OCTET STRING around the uncompressed point
                    point = OctetString.load(key[Attribute.EC_POINT]).native
                    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
                return rsa.RSAPublicNumbers(
                    int.from_bytes(key[Attribute.PUBLIC_EXPONENT], "big"),
                    int.from_bytes(key[Attribute.MODULUS], "big")).public_key()
            except pkcs11.PKCS11Error as exc:
                raise KeyUnavailable(f"key {self.kid}: {type(exc).__name__}") from exc

    def sign(self, data: bytes) -> bytes:
        """Sign in the token; a failure of the operation itself is retried once on a fresh
        session (the token may have come back since the session was opened)."""
        try:
            return self._sign(data)
        except KeyUnavailable:
            return self._sign(data)

    def _sign(self, data: bytes) -> bytes:
        import pkcs11
        from pkcs11 import MGF, Mechanism, ObjectClass

        mechanism, params = {
            "RS256": (Mechanism.SHA256_RSA_PKCS, None),
            "PS256": (Mechanism.SHA256_RSA_PKCS_PSS, (Mechanism.SHA256, MGF.SHA256, 32)),
            # SoftHSM 2.6 has no CKM_ECDSA_SHA256: hash here, let the token sign the digest
            "ES256": (Mechanism.ECDSA, None),
        }[self.alg]
        if self.alg == "ES256":
            import hashlib

            data = hashlib.sha256(data).digest()
        with self.token.session() as session:
            try:
                key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self.kid)
                return key.sign(data, mechanism=mechanism, mechanism_param=params)
            except pkcs11.PKCS11Error as exc:
                raise KeyUnavailable(f"key {self.kid}: {type(exc).__name__}") from exc

    def extractable(self) -> bool:
        from pkcs11 import Attribute, ObjectClass

        with self.token.session() as session:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=self.kid)
            return bool(key[Attribute.EXTRACTABLE])
