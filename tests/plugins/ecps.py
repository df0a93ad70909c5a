"""e-CPS fixtures: simulated phones (``psc-ecps``) with their own state directory; psc-idp
behind nginx behind a load balancer, so that test browsers come from any network; a push
channel that records what reached the phones."""

from __future__ import annotations

import contextlib

import pytest

from ..ecps_support import Phone
from .nginx import behind_nginx

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
    realip = f"  set_real_ip_from 127.0.0.1;\n  real_ip_header {CLIENT_ADDRESS};\n"
    RecordingPush.sent.clear()
    with behind_nginx(keys_dir, database_url, cards, tmp_path, http_extra=realip,
                      smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                      sms_outbox_dir=str(tmp_path / "sms-outbox"),
                      ecps_push="tests.plugins.ecps:RecordingPush", **extra) as live:
        yield live


@pytest.fixture
def networked(keys_dir, database_url, cards, smtp_server, tmp_path):
    """``networked(**settings)``: a context manager giving a psc-idp whose browsers may
    come from any network (``networked_idp``)."""
    return lambda **extra: networked_idp(keys_dir, database_url, cards, smtp_server,
                                         tmp_path, **extra)
