"""What a developer reads when a client is refused (in process, both databases): a wrong
secret is "invalid client credentials", a method the client did not register names the one
it did, and an RP-initiated logout that stops on psc-idp's page says why (no
``post_logout_redirect_uri`` sent, one not registered, or one sent without
``id_token_hint``)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest

from psc_idp.oidc.consts import PATHS

from .test_round_trips import BASE_URL, ISSUER_PATH, REDIRECT, protocol  # noqa: F401

LOGGED_OUT = "https://rp.example/logged-out"


def register(protocol, **metadata):  # noqa: F811
    from psc_idp.clients import create_client

    with protocol.app.app_context():
        client, secret = create_client(name="errors", redirect_uris=[REDIRECT],
                                       post_logout_redirect_uris=[LOGGED_OUT], **metadata)
        return client.client_id, secret


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode())
            .decode()}


def token_request(protocol, data: dict, headers=None):  # noqa: F811
    code = {"grant_type": "authorization_code", "code": "c", "redirect_uri": REDIRECT}
    return protocol.http.post(ISSUER_PATH + PATHS["token_endpoint"], base_url=BASE_URL,
                              headers=headers or {}, data={**code, **data})


def refused(response) -> str:
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid_client"
    return body["error_description"]


def test_a_wrong_secret_is_invalid_client_credentials(protocol):  # noqa: F811
    client_id, _ = register(protocol)
    assert refused(token_request(protocol, {}, basic(client_id, "wrong"))) == \
        "invalid client credentials"
    # in the body too: not a list of every authentication method
    assert refused(token_request(protocol, {"client_id": client_id,
                                            "client_secret": "wrong"})) == \
        "invalid client credentials"
    introspection = protocol.http.post(ISSUER_PATH + PATHS["introspection_endpoint"],
                                       base_url=BASE_URL, data={
                                           "token": "t", "client_id": client_id,
                                           "client_secret": "wrong"})
    assert refused(introspection) == "invalid client credentials"


def test_an_unregistered_method_names_the_registered_one(protocol, client_key):  # noqa: F811
    strict_basic, secret = register(protocol, strict_client_auth=True)
    described = refused(token_request(protocol, {"client_id": strict_basic,
                                                 "client_secret": secret}))
    assert "registered for client_secret_basic" in described and "client_secret_post" in \
        described

    strict_post, post_secret = register(protocol, strict_client_auth=True,
                                        auth_method="client_secret_post")
    described = refused(token_request(protocol, {}, basic(strict_post, post_secret)))
    assert "registered for client_secret_post" in described

    signed, _ = register(protocol, auth_method="private_key_jwt", jwks=client_key.jwks)
    described = refused(token_request(protocol, {}, basic(signed, "a-secret")))
    assert "registered for private_key_jwt" in described and "client_assertion" in described

    described = refused(token_request(protocol, {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_key.assertion(strict_basic, BASE_URL + ISSUER_PATH)}))
    assert "registered for client_secret_basic" in described

    # a secret client that sends no secret
    described = refused(token_request(protocol, {"client_id": strict_basic}))
    assert "registered for client_secret_basic" in described

    public, _ = register(protocol, auth_method="none")
    described = refused(token_request(protocol, {"client_id": public,
                                                 "client_secret": "a-secret"}))
    assert "registered for none" in described and "code_verifier" in described


def test_no_credentials_at_all(protocol):  # noqa: F811
    described = refused(token_request(protocol, {}))
    assert described.startswith("client authentication required")


# --- RP-initiated logout that stops on psc-idp's page --------------------------------------

def id_token_of(protocol, client_id: str, secret: str) -> str:  # noqa: F811
    protocol.client_id = client_id
    protocol.auth = basic(client_id, secret)
    return protocol.exchange(protocol.code())["id_token"]


def logout(protocol, params: dict, language: str = "en"):  # noqa: F811
    return protocol.http.get(ISSUER_PATH + PATHS["end_session_endpoint"] + "?" +
                             urlencode(params), base_url=BASE_URL,
                             headers={"Accept-Language": language})


@pytest.fixture
def logged_in(protocol):  # noqa: F811
    client_id, secret = register(protocol)
    return client_id, id_token_of(protocol, client_id, secret)


def test_logout_without_post_logout_uri_says_none_was_sent(protocol, logged_in):  # noqa: F811
    client_id, id_token = logged_in
    page = logout(protocol, {"id_token_hint": id_token})
    assert page.status_code == 200 and "Location" not in page.headers
    text = page.get_data(as_text=True)
    assert 'id="logged-out"' in text  # the session did end
    assert f"No post_logout_redirect_uri was sent by application {client_id}" in text
    french = logout(protocol, {"id_token_hint": id_token}, "fr").get_data(as_text=True)
    assert f"application {client_id} n'a envoyé aucune post_logout_redirect_uri" in \
        french


def test_logout_to_an_unregistered_uri_names_it(protocol, logged_in):  # noqa: F811
    client_id, id_token = logged_in
    page = logout(protocol, {"id_token_hint": id_token,
                             "post_logout_redirect_uri": "https://rp.example/elsewhere"})
    assert page.status_code == 400 and "Location" not in page.headers
    text = page.get_data(as_text=True)
    assert (f"this application ({client_id}) has not registered post-logout URI "
            "https://rp.example/elsewhere") in text
    assert f"psc-idp clients update {client_id} --post-logout-redirect-uri" in text


def test_logout_without_id_token_hint_says_to_send_it(protocol, logged_in):  # noqa: F811
    client_id, _ = logged_in
    text = logout(protocol, {"client_id": client_id, "post_logout_redirect_uri": LOGGED_OUT}
                  ).get_data(as_text=True)
    assert f"post-logout URI {LOGGED_OUT} is registered" in text
    assert "send the ID token as id_token_hint" in text
    text = logout(protocol, {"post_logout_redirect_uri": LOGGED_OUT}).get_data(as_text=True)
    assert "without id_token_hint nor client_id" in text
