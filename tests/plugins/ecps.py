"""e-CPS fixtures: simulated phones (``psc-ecps``) with their own state directory; psc-idp
behind nginx behind a load balancer, so that test browsers come from any network; a push
channel that records what reached the phones."""

from __future__ import annotations

import contextlib

import pytest
from werkzeug.serving import make_server

from psc_idp import create_app

from ..ecps_support import Phone
from .idp import Idp, LiveServer, free_port, live_settings
from .nginx import PROXY_SECRET, Nginx, render_site

#: the header the load balancer in front of nginx sets; nginx takes the client's address
#: from it (realip) and appends it to X-Forwarded-For, as behind a real load balancer
CLIENT_ADDRESS = "X-Test-Client-Address"


@pytest.fixture
def phone_factory(tmp_path, idp):
    return lambda name: Phone(tmp_path / name, idp.ca)


class RecordingPush:
    """A push channel (``ecps_push = "tests.plugins.ecps:RecordingPush"``): every
    notification psc-idp sends, as (idNat, request id)."""

    sent: list[tuple[str, str]] = []

    def notify(self, device, request_id: str) -> None:
        RecordingPush.sent.append((device.id_nat, request_id))


@contextlib.contextmanager
def networked_idp(keys_dir, database_url, cards, smtp_server, tmp_path, **extra):
    """psc-idp on plain HTTP behind the shipped nginx site, itself behind a load balancer
    nginx trusts for the client's address (``set_real_ip_from 127.0.0.1``, header
    ``CLIENT_ADDRESS``): a browser sending that header comes from that address, as far as
    nginx and psc-idp can tell. psc-idp trusts nginx as in production (address and
    ``proxy_secret``) and takes the last X-Forwarded-For hop, the one nginx adds."""
    idp_port, card_port, app_port = free_port(), free_port(), free_port()
    settings = live_settings(
        keys_dir, database_url, cards, trusted_proxies=["127.0.0.1/32"],
        proxy_secret=PROXY_SECRET, smtp_host="127.0.0.1", smtp_port=smtp_server.port,
        sms_outbox_dir=str(tmp_path / "sms-outbox"),
        ecps_push="tests.plugins.ecps:RecordingPush", **extra)
    settings.update(issuer=f"https://localhost:{idp_port}/auth/realms/esante-wallet",
                    card_login_url=f"https://localhost:{card_port}")
    app = create_app(settings)
    server = LiveServer(app, [make_server("127.0.0.1", app_port, app, threaded=True)])
    server.start()
    nginx = Nginx(tmp_path / "nginx", render_site(cards.pki, [app_port], idp_port, card_port))
    conf = nginx.prefix / "nginx.conf"
    realip = f"  set_real_ip_from 127.0.0.1;\n  real_ip_header {CLIENT_ADDRESS};\n"
    conf.write_text(conf.read_text().replace("http {\n", "http {\n" + realip))
    nginx.start([idp_port, card_port])
    RecordingPush.sent.clear()
    try:
        yield Idp(server, cards.pki.tls_ca)
    finally:
        nginx.stop()
        server.stop()
        with app.app_context():
            from psc_idp.extensions import db

            db.engine.dispose()


@pytest.fixture
def networked(keys_dir, database_url, cards, smtp_server, tmp_path):
    """``networked(**settings)``: a context manager giving a psc-idp whose browsers may
    come from any network (``networked_idp``)."""
    return lambda **extra: networked_idp(keys_dir, database_url, cards, smtp_server,
                                         tmp_path, **extra)
