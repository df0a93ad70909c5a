"""TLS of the embedded listeners (``psc-idp run``), with pyOpenSSL: Python's ``ssl`` module
has no certificate-verify callback, so it cannot accept every client certificate during the
handshake as nginx's ``ssl_verify_client optional_no_ca`` does in production.

The card origin asks for a client certificate, names the card CAs in its CertificateRequest
(browsers and curl then offer the CPS certificate) and accepts whatever certificate comes:
psc-idp judges it afterwards in ``cards.verify`` (psc.md §5) and tells the professional why a
card is refused, with an audit record. OpenSSL still checks the client's CertificateVerify
signature, so the client holds the card's private key. The card origin never resumes a TLS
session (and ``serve`` closes its connections after each answer): a resumed session carries
the certificate of an earlier handshake, and each card login must be a fresh proof of
possession of the card.

The mTLS origin (RFC 8705) has the same handshake, naming the organisation CAs: psc-idp
judges the certificate when a client authenticates with it (``oidc.mtls``)."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from .cards.verify import load_certificates


def server_context(cert: str, key: str) -> SSL.Context:
    """A TLS 1.2+ server context for the IdP and wallet origins."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE |
                        SSL.OP_NO_RENEGOTIATION)
    context.use_certificate_chain_file(cert)
    context.use_privatekey_file(key)
    context.check_privatekey()
    return context


def card_context(cert: str, key: str, card_ca_paths: Iterable[str]) -> SSL.Context:
    """The card origin's context: any client certificate is accepted (optional, as
    ``optional_no_ca``), the CA names of ``card_ca_paths`` are sent, no session is resumed."""
    context = server_context(cert, key)
    for authority in load_certificates(card_ca_paths):
        context.add_client_ca(authority)
    context.set_verify(SSL.VERIFY_PEER, _accept_any_certificate)
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)  # no session-id resumption
    context.set_options(SSL.OP_NO_TICKET)  # no ticket resumption (TLS 1.2 and 1.3)
    return context


def mtls_context(cert: str, key: str, org_ca_paths: Iterable[str]) -> SSL.Context:
    """The mTLS origin's context (RFC 8705): as the card origin's, with the organisation
    CAs' names; a self-signed client certificate (§2.2) is offered and accepted too."""
    return card_context(cert, key, org_ca_paths)


def _accept_any_certificate(connection, certificate, error: int, depth: int, ok: int) -> bool:
    """The chain is judged by psc-idp after the handshake, not by OpenSSL during it."""
    return True


def peer_certificate_pem(connection: SSL.Connection) -> str | None:
    """The client certificate of this connection's handshake, as PEM (``SSL_CLIENT_CERT``)."""
    certificate = connection.get_peer_certificate(as_cryptography=True)
    return certificate.public_bytes(Encoding.PEM).decode() if certificate else None
