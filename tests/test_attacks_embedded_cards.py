"""The embedded card origin behaves like nginx's ``ssl_verify_client optional_no_ca``: it
names the card CAs in its certificate request, accepts any certificate at the handshake and
lets psc-idp refuse it with a reason and an audit record (expired, untrusted, revoked — with
the card's key in SoftHSM, through curl); it never resumes a TLS session, so an earlier
handshake's certificate cannot stand in for a fresh card authentication; and its access log
holds no one-time value of the login."""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket
import ssl
import time
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from psc_idp.audit import AuditEvent
from psc_idp.cards.verify import load_certificates
from psc_idp.extensions import db

from .support import code_from, query


def reason(body: str) -> str | None:
    found = re.search(r'id="failure" data-reason="([^"]+)"', body)
    return found.group(1) if found else None


def card_failures(idp) -> list[dict]:
    with idp.app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).where(
            AuditEvent.event == "login", AuditEvent.outcome == "failure")).all()
        return [row.detail for row in rows]


@pytest.mark.parametrize("label,expected", [("CPS-EXPIRED", "expired"),
                                            ("CPS-UNTRUSTED", "untrusted"),
                                            ("CPS-REVOKED", "revoked")])
def test_refused_cards_get_the_reason_and_an_audit_record(idp, browser, cards, label,
                                                          expected):
    card_url = browser.start(idp.rp().authorization_url())
    status, headers, body = browser.card_curl(cards[label], card_url)
    assert status == 403 and "location" not in headers, body  # a page, not a TLS error
    assert reason(body) == expected
    assert [d["reason"] for d in card_failures(idp) if d.get("method") == "card"] == [expected]


def origin(url: str) -> tuple[str, int]:
    return "127.0.0.1", urlsplit(url).port


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_certificate_request_names_the_card_authorities(idp, cards):
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.load_verify_locations(idp.ca)
    context.set_verify(SSL.VERIFY_PEER)
    with socket.create_connection(origin(idp.card_url), timeout=10) as sock:
        sock.settimeout(None)  # pyOpenSSL wants a blocking socket
        tls = SSL.Connection(context, sock)
        tls.set_tlsext_host_name(b"localhost")
        tls.set_connect_state()
        tls.do_handshake()
        names = {name.der() for name in tls.get_client_ca_list()}
    expected = load_certificates([cards.pki.trust_anchor, cards.pki.issuing_ca])
    assert names == {c.subject.public_bytes() for c in expected}


@pytest.fixture
def client_certificate(tmp_path) -> tuple[str, str]:
    """A throwaway client certificate: the card origin accepts it at the handshake."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "899700245667")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def get(context: ssl.SSLContext, url: str, session=None):
    """One HTTP/1.1 request on a new TLS connection; (status line, TLS session, resumed)."""
    parts = urlsplit(url)
    with socket.create_connection(origin(url), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        tls.sendall(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                    "Connection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):  # reading also takes the TLS 1.3 session tickets
            response += chunk
        return response.split(b"\r\n", 1)[0], tls.session, tls.session_reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_card_origin_never_resumes_a_session(idp, browser, client_certificate, version):
    context = ssl.create_default_context(cafile=idp.ca)
    context.load_cert_chain(*client_certificate)
    context.minimum_version = context.maximum_version = version
    # the same client resumes its session on the IdP origin: the attempt is a real one
    healthz = idp.issuer.split("/auth/")[0] + "/healthz"
    _, session, _ = get(context, healthz)
    status, _, resumed = get(context, healthz, session)
    assert status.endswith(b" 200 OK") and resumed
    card_url = browser.start(idp.rp().authorization_url())
    status, session, resumed = get(context, card_url)
    assert status.endswith(b" 403 FORBIDDEN") and not resumed
    for _ in range(2):
        status, session, resumed = get(context, card_url, session)
        assert not resumed  # a full handshake: the certificate is asked for again


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_card_origin_closes_each_connection(idp, browser, demo_card):
    """No second card login on the first one's connection (shared workstations)."""
    context = ssl.create_default_context(cafile=idp.ca)
    card_url = urlsplit(browser.start(idp.rp().authorization_url()))
    request = (f"GET {card_url.path}?{card_url.query} HTTP/1.1\r\nHost: {card_url.netloc}"
               "\r\n\r\n").encode()
    with socket.create_connection(origin(idp.card_url), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(request + request)  # a kept-alive client's two requests
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    assert response.count(b"HTTP/1.1 ") == 1 and b"\r\nConnection: close\r\n" in response


def test_the_access_log_holds_no_one_time_value(idp, browser, demo_card):
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    access = logging.getLogger("psc_idp.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        rp = idp.rp()
        card_url = browser.start(rp.authorization_url())
        status, headers, _ = browser.card_curl(demo_card, card_url)
        assert status == 302
        handoff = query(headers["location"])
        code = code_from(browser.get(headers["location"]))["code"]
        assert rp.exchange(code).status_code == 200
        deadline = time.monotonic() + 5  # a line is written once its response has gone
        while not any("/token" in line for line in records) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    log = "\n".join(records)
    assert "/card/login" in log and "/login/complete" in log and "/token" in log
    for secret in (handoff["h"], handoff["tx"], code, rp.state, rp.client_secret):
        assert secret not in log
    assert "?" not in log
