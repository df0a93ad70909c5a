"""The HTTP SMS gateway adapter against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from psc_idp import create_app
from psc_idp.ecps.messaging import DeliveryError, HttpGateway

from .plugins.idp import base_settings


class Provider(BaseHTTPRequestHandler):
    received: list = []
    status = 202

    def do_POST(self):  # noqa: N802 (http.server hook)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Provider.received.append((self.headers["Authorization"], json.loads(body)))
        self.send_response(Provider.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Provider.received, Provider.status = [], 202
    yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    server.shutdown()
    server.server_close()


def test_http_gateway_posts_json_with_the_token(provider):
    HttpGateway(provider, "t0ken").send("+33 600000001", "code 12345678")
    assert Provider.received == [("Bearer t0ken", {"to": "+33 600000001",
                                                   "text": "code 12345678"})]


def test_http_gateway_failure_is_reported(provider):
    Provider.status = 503
    with pytest.raises(DeliveryError):
        HttpGateway(provider, "").send("+33 600000001", "x")


def test_settings_select_the_http_gateway(keys_dir, tmp_path, provider):
    from psc_idp.ecps.messaging import sms_gateway

    app = create_app(base_settings(keys_dir, f"sqlite:///{tmp_path / 'db'}",
                                   sms_gateway="http", sms_http_url=provider))
    with app.app_context():
        gateway = sms_gateway()
    assert isinstance(gateway, HttpGateway) and gateway.url == provider
