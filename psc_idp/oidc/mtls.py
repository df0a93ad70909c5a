"""Mutual-TLS client authentication (RFC 8705 §2) on the mTLS origin (``mtls_url``):

- ``tls_client_auth`` (§2.1): an IGC-Santé organisation certificate (``ORG AUTH_CLI``),
  valid, chained to ``org_trust_anchors``, unrevoked (``cards.verify``, as a card), whose
  subject DN or one SAN entry is the value the client registered (§2.1.2);
- ``self_signed_tls_client_auth`` (§2.2): the certificate's public key is one of the keys
  the client registered (``jwks``); no chain.

The certificate is the one of the embedded mTLS listener's handshake or, behind nginx, the
trusted proxy's header, exactly as for card login (``cards.source``). The client names
itself with ``client_id`` (§2); a client registered for one of these methods that presents
no certificate, or a refused one, is ``invalid_client`` with the reason."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import g
from flask import request as flask_request
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from ..cards.source import UntrustedCertificateSource, client_certificate
from ..cards.verify import CardRejected
from ..extensions import idp
from ..net import from_proxy
from ..settings import current as settings
from .consts import PATHS

log = logging.getLogger("psc_idp.mtls")

#: RFC 4514 attribute names beyond cryptography's own, as IGC-Santé subjects use them
DN_NAMES = {"SN": x509.NameOID.SURNAME, "GN": x509.NameOID.GIVEN_NAME,
            "title": x509.NameOID.TITLE, "serialNumber": x509.NameOID.SERIAL_NUMBER,
            "emailAddress": x509.NameOID.EMAIL_ADDRESS}
_OID_NAMES = {oid: name for name, oid in DN_NAMES.items()}
#: attribute names as people type them (``cn=…``): read as RFC 4514's
_LENIENT_NAMES = {**DN_NAMES, **{name.lower(): oid for name, oid in {
    "CN": x509.NameOID.COMMON_NAME, "OU": x509.NameOID.ORGANIZATIONAL_UNIT_NAME,
    "O": x509.NameOID.ORGANIZATION_NAME, "C": x509.NameOID.COUNTRY_NAME,
    "L": x509.NameOID.LOCALITY_NAME, "ST": x509.NameOID.STATE_OR_PROVINCE_NAME,
    **DN_NAMES}.items()}}
#: §2.1.2: the registered field → the certificate entries it is compared with
SAN_TYPES = {"tls_client_auth_san_dns": x509.DNSName,
             "tls_client_auth_san_uri": x509.UniformResourceIdentifier,
             "tls_client_auth_san_ip": x509.IPAddress,
             "tls_client_auth_san_email": x509.RFC822Name}
SUBJECT_FIELDS = ("tls_client_auth_subject_dn", *SAN_TYPES)


def certificate() -> x509.Certificate | None:
    """The client certificate of the current request; None when there is none (another
    origin, no certificate sent, a header from an untrusted source, not a certificate)."""
    if "psc_idp_client_cert" not in g:
        g.psc_idp_client_cert = _read_certificate()
    return g.psc_idp_client_cert


def _read_certificate() -> x509.Certificate | None:
    environ = flask_request.environ
    try:
        pem = client_certificate(environ, from_proxy=from_proxy(environ, settings()),
                                 header=settings().client_cert_header)
    except UntrustedCertificateSource as exc:
        log.warning("client certificate header from untrusted %s ignored", exc)
        return None
    if pem is None:
        return None
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None


def thumbprint(cert: x509.Certificate) -> str:
    """§3.1: ``x5t#S256``, the base64url SHA-256 of the certificate's DER encoding."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def alias(endpoint: str = "token_endpoint") -> str:
    """The mTLS alias of ``endpoint`` (§5)."""
    return settings().mtls_url + urlsplit(settings().issuer).path.rstrip("/") + \
        PATHS[endpoint]


def _refused(description: str) -> InvalidClientError:
    return InvalidClientError(status_code=401, description=description)


def _client_and_certificate(query_client, request, method: str):
    """The client the request names, if it registered ``method`` and sent no other
    credentials, with its certificate; raises when the certificate is missing."""
    form = request.form
    if request.headers.get("Authorization") or form.get("client_secret") is not None or \
            form.get("client_assertion") is not None:
        return None
    client_id = form.get("client_id")
    client = query_client(client_id) if client_id else None
    if client is None or client.token_endpoint_auth_method != method:
        return None
    cert = certificate()
    if cert is None:
        where = f" at {alias()} and the other mTLS endpoint aliases" if \
            settings().mtls_url else " (this server has no mTLS origin: mtls_url)"
        raise _refused(f"{method}: present your client certificate in the TLS handshake"
                       f"{where}")
    return client, cert


def tls_client_auth(query_client, request):
    """§2.1: PKI mutual-TLS with an organisation certificate."""
    found = _client_and_certificate(query_client, request, "tls_client_auth")
    if found is None:
        return None
    client, cert = found
    verifier = idp().orgs
    if verifier is None:
        raise _refused("tls_client_auth: no organisation trust anchor is configured on this "
                       "server (org_trust_anchors)")
    try:
        verifier.certificate(cert.public_bytes(serialization.Encoding.PEM))
    except CardRejected as exc:
        log.warning("tls_client_auth of %s refused: %s", client.client_id, exc)
        raise _refused(f"tls_client_auth: client certificate refused ({exc.reason})") from None
    if not matches(client, cert):
        log.warning("tls_client_auth of %s refused: subject %s", client.client_id,
                    cert.subject.rfc4514_string())
        raise _refused(f"tls_client_auth: the client certificate's subject "
                       f"({cert.subject.rfc4514_string(_OID_NAMES)[:300]}) is not the one "
                       "registered for this client (tls_client_auth_subject_dn or SAN)")
    return client


def self_signed_tls_client_auth(query_client, request):
    """§2.2: the certificate's public key is one of the client's registered keys."""
    found = _client_and_certificate(query_client, request, "self_signed_tls_client_auth")
    if found is None:
        return None
    client, cert = found
    if not _registered_key(client.jwks, cert):
        log.warning("self_signed_tls_client_auth of %s refused: unregistered key",
                    client.client_id)
        raise _refused("self_signed_tls_client_auth: the client certificate's key is not "
                       "one of the client's registered keys (jwks)")
    return client


def _registered_key(jwks, cert: x509.Certificate) -> bool:
    presented = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for key in (jwks or {}).get("keys", []):
        try:
            public = JWKRegistry.import_key(key).get_op_key("verify")
            der = public.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
        except (JoseError, ValueError, TypeError, KeyError, AttributeError):
            continue
        if der == presented:
            return True
    return False


# --- §2.1.2: the registered subject ---------------------------------------------------

def parse_dn(value: str) -> x509.Name:
    """An RFC 4514 string (``CN=…,OU=…,O=…,C=FR``; spaces after the separators and
    lower-case attribute names accepted); raises ValueError."""
    tidy = re.sub(r"(?<!\\)([,+])\s+", r"\1", value.strip())
    return x509.Name.from_rfc4514_string(tidy, _LENIENT_NAMES)


def normalise_dn(value: str) -> str:
    """The registered DN as stored: RFC 4514, the attribute names psc-idp prints."""
    return parse_dn(value).rfc4514_string(_OID_NAMES)


def _dn_key(name: x509.Name) -> tuple:
    """Compared as RFC 5280 §7.1 suggests: per RDN, types and values, case and inner
    spaces folded."""
    return tuple(frozenset((a.oid.dotted_string, " ".join(str(a.value).split()).casefold())
                           for a in rdn) for rdn in name.rdns)


def matches(client, cert: x509.Certificate) -> bool:
    """The certificate carries the subject DN or SAN entry the client registered."""
    if client.tls_client_auth_subject_dn:
        return _dn_key(parse_dn(client.tls_client_auth_subject_dn)) == _dn_key(cert.subject)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    for field, kind in SAN_TYPES.items():
        wanted = getattr(client, field)
        if not wanted:
            continue
        values = san.get_values_for_type(kind)
        if kind is x509.IPAddress:
            return ipaddress.ip_address(wanted) in values
        if kind is x509.UniformResourceIdentifier:
            return wanted in values
        return wanted.casefold() in {v.casefold() for v in values}
    return False
