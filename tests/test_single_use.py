"""Codes and refresh tokens stay single-use when they are consumed by one conditional
statement and several requests race for them (in process, threads, both databases): a
code exchanged twice at once gives tokens once, and the loser's replay revokes them; a
refresh token of a client without reuse grace rotated twice at once gives new tokens at
most once, and the reuse revokes the chain."""

from __future__ import annotations

import threading

import pytest

from .test_round_trips import Protocol, protocol  # noqa: F401 - the fixture

RACERS = 4


def race(idp: Protocol, request) -> list:
    """``request(client)`` from RACERS threads at once; their responses."""
    start, answers = threading.Barrier(RACERS), []

    def racer():
        client = idp.app.test_client()
        start.wait()
        answers.append(request(client))

    threads = [threading.Thread(target=racer) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


@pytest.mark.parametrize("attempt", range(3))
def test_a_code_raced_for_gives_tokens_once(protocol, attempt):  # noqa: F811
    code = protocol.code()
    answers = race(protocol, lambda client: protocol.post_token(client, {
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": "https://rp.example/cb"}))
    won = [a for a in answers if a.status_code == 200]
    assert len(won) == 1, [a.get_json() for a in answers]
    assert all(a.get_json()["error"] == "invalid_grant" for a in answers if a not in won)
    # the losers' replays revoked what the winner got
    access_token = won[0].get_json()["access_token"]
    assert protocol.introspect(access_token)["active"] is False


@pytest.mark.parametrize("attempt", range(3))
def test_a_refresh_token_without_grace_raced_for_rotates_once(protocol, attempt):  # noqa: F811
    protocol.set_reuse_grace(0)
    refresh_token = protocol.exchange(protocol.code())["refresh_token"]
    answers = race(protocol, lambda client: protocol.post_token(client, {
        "grant_type": "refresh_token", "refresh_token": refresh_token}))
    won = [a for a in answers if a.status_code == 200]
    assert len(won) <= 1, [a.get_json() for a in answers]
    for answer in won:  # the chain was revoked by the reuses
        assert protocol.introspect(answer.get_json()["access_token"])["active"] is False


def test_a_client_assertion_stays_used_whatever_the_outcome(protocol, client_key):  # noqa: F811
    """RFC 7523 §3: an assertion presented to introspection (which writes nothing else)
    or to a token request that is refused is used: it is refused the second time."""
    from psc_idp.clients import create_client
    from psc_idp.oidc.consts import PATHS

    from .test_round_trips import BASE_URL, ISSUER_PATH, REDIRECT

    with protocol.app.app_context():
        client, _ = create_client(name="signed", redirect_uris=[REDIRECT],
                                  auth_method="private_key_jwt",
                                  jwks=client_key.jwks)
        client_id = client.client_id
    http = protocol.app.test_client()

    def post(endpoint: str, assertion: str, data: dict):
        return http.post(ISSUER_PATH + PATHS[endpoint], base_url=BASE_URL, data={
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, **data})

    for endpoint, data, status in (
            ("introspection_endpoint", {"token": "not-a-token"}, 200),
            ("token_endpoint", {"grant_type": "authorization_code", "code": "unknown",
                                "redirect_uri": REDIRECT}, 400)):
        assertion = client_key.assertion(client_id, BASE_URL + ISSUER_PATH +
                                         PATHS["token_endpoint"])
        first = post(endpoint, assertion, data)
        assert first.status_code == status, first.get_json()
        replay = post(endpoint, assertion, data)
        assert replay.status_code in (400, 401), replay.get_json()
        assert replay.get_json()["error"] == "invalid_client"
