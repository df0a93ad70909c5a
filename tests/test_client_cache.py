"""Clients served from each process's memory (``clients.cache``), on both databases with two
app instances on one database (two processes of one deployment): a client disabled,
deleted or given a new secret in one is refused in the other within a second, and at once
in the one that changed it; clients are not read per request."""

from __future__ import annotations

import base64
import time

import pytest

from psc_idp import create_app
from psc_idp.oidc.consts import PATHS

from .plugins.idp import base_settings
from .test_round_trips import BASE_URL, ISSUER_PATH, REDIRECT, counted

#: the cache's promise, and what a busy test machine may add to it
WITHIN = 1.0
SLACK = 0.5


class Instance:
    """One app, as one process of the deployment."""

    def __init__(self, app):
        self.app, self.http = app, app.test_client()

    def introspect(self, client_id: str, secret: str):
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return self.http.post(ISSUER_PATH + PATHS["introspection_endpoint"], base_url=BASE_URL,
                              headers={"Authorization": f"Basic {basic}"},
                              data={"token": "not-a-token"})

    def change(self, client_id: str, action, *args):
        """``action(client, *args, actor=…)`` from ``psc_idp.clients`` in this instance."""
        from psc_idp import clients

        with self.app.app_context():
            return action(clients.find(client_id), *args, actor="test")


@pytest.fixture
def deployment(keys_dir, database_url):
    from psc_idp.clients import create_client
    from psc_idp.extensions import db

    apps = [create_app(base_settings(keys_dir, database_url)) for _ in range(2)]
    with apps[0].app_context():
        client, secret = create_client(name="cached", redirect_uris=[REDIRECT])
        client_id = client.client_id
    yield [Instance(app) for app in apps], client_id, secret
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def refused_after(instance: Instance, client_id: str, secret: str) -> float:
    """Seconds until ``instance`` refuses the client's credentials (at most WITHIN + SLACK)."""
    started = time.monotonic()
    while instance.introspect(client_id, secret).status_code != 401:
        elapsed = time.monotonic() - started
        assert elapsed < WITHIN + SLACK, "still accepted"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_client_disabled_elsewhere_is_refused_within_a_second(deployment):
    from psc_idp.clients import set_enabled

    (serving, admin), client_id, secret = deployment
    assert serving.introspect(client_id, secret).get_json() == {"active": False}
    admin.change(client_id, set_enabled, False)
    assert admin.introspect(client_id, secret).status_code == 401  # at once where changed
    assert refused_after(serving, client_id, secret) <= WITHIN + SLACK
    admin.change(client_id, set_enabled, True)
    deadline = time.monotonic() + WITHIN + SLACK
    while serving.introspect(client_id, secret).status_code != 200:
        assert time.monotonic() < deadline, "still refused"
        time.sleep(0.02)


def test_a_client_deleted_elsewhere_is_refused_within_a_second(deployment):
    from psc_idp.clients import delete_client

    (serving, admin), client_id, secret = deployment
    assert serving.introspect(client_id, secret).status_code == 200
    admin.change(client_id, delete_client)
    assert refused_after(serving, client_id, secret) <= WITHIN + SLACK


def test_a_secret_rotated_elsewhere_replaces_the_old_one_within_a_second(deployment):
    from psc_idp.clients import rotate_secret

    (serving, admin), client_id, secret = deployment
    assert serving.introspect(client_id, secret).status_code == 200
    new_secret = admin.change(client_id, rotate_secret, 0)
    assert refused_after(serving, client_id, secret) <= WITHIN + SLACK
    assert serving.introspect(client_id, new_secret).status_code == 200


def test_the_instance_that_changes_a_client_sees_it_at_once(deployment):
    from psc_idp.clients import rotate_secret, set_enabled

    (serving, _), client_id, secret = deployment
    assert serving.introspect(client_id, secret).status_code == 200
    new_secret = serving.change(client_id, rotate_secret, 0)
    assert serving.introspect(client_id, secret).status_code == 401
    assert serving.introspect(client_id, new_secret).status_code == 200
    serving.change(client_id, set_enabled, False)
    assert serving.introspect(client_id, new_secret).status_code == 401


def test_clients_are_not_read_per_request(deployment):
    (serving, _), client_id, secret = deployment
    serving.introspect(client_id, secret)
    with serving.app.app_context():
        from psc_idp.extensions import db

        engine = db.engine
    started = time.monotonic()
    with counted(engine) as cost:
        for _ in range(20):
            assert serving.introspect(client_id, secret).status_code == 200
    seconds = time.monotonic() - started
    assert not [s for s in cost.statements if "FROM oauth_client" in s], cost
    version_reads = [s for s in cost.statements if "FROM client_version" in s]
    assert len(version_reads) <= seconds / WITHIN + 1, cost
