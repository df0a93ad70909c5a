"""Userinfo served from the professional's stored claims (``directory_document``, read with
the access token in one statement) is byte for byte what psc-idp served when it built them
from the directory tables, for every client spelling (``compat``) and with or without
``scope_all``, on both databases; a professional no longer active gets ``invalid_token``."""

from __future__ import annotations

import base64
import itertools
import secrets

import pytest

from psc_idp.clients import create_client
from psc_idp.directory.claims import COMPAT_FLAGS, professional_claims
from psc_idp.directory.importer import import_file
from psc_idp.directory.lookup import find_active
from psc_idp.directory.models import ProfessionalDocument
from psc_idp.extensions import db
from psc_idp.oidc.consts import PALIER, PATHS
from psc_idp.oidc.models import AuthorizationCode, LoginSession, digest, now
from psc_idp.oidc.subject import subject_identifier
from tests.directory_fixtures import DEMO, KIT, PSC51, directory_app

from .test_round_trips import BASE_URL, ISSUER_PATH, REDIRECT

#: every combination of the spellings a client may ask for
FLAG_SETS = [frozenset(c) for n in range(len(COMPAT_FLAGS) + 1)
             for c in itertools.combinations(sorted(COMPAT_FLAGS), n)]
_ORDER = ("sub", "preferred_username", "SubjectNameID", "given_name", "family_name",
          "email_verified", "authMode", "Palier_Authentification")


def built_from_the_tables(id_nat: str, scope: str, compat: frozenset) -> dict:
    """Userinfo as psc-idp built it before the stored claims (its code, kept here)."""
    practitioner = find_active(id_nat)
    claims = {"sub": subject_identifier(id_nat)}
    if "scope_all" in scope.split():
        claims.update(professional_claims(practitioner, compat=compat))
        claims["authMode"], claims["Palier_Authentification"] = "CARD", PALIER
        head = {k: claims[k] for k in _ORDER if k in claims}
        return head | {k: v for k, v in claims.items() if k not in head}
    return {**claims, "preferred_username": id_nat, "SubjectNameID": id_nat,
            "given_name": practitioner.given_names.split("'")[0],
            "family_name": practitioner.family_name, "email_verified": False,
            "codeCivilite": practitioner.civilite, "authMode": "CARD"}


@pytest.fixture
def app(keys_dir, database_url):
    yield from directory_app(keys_dir, database_url)


def access_token(app, id_nat: str, scope: str, compat: frozenset) -> str:
    """An access token for ``id_nat`` issued by the token endpoint to a new client."""
    client, secret = create_client(name="userinfo", redirect_uris=[REDIRECT],
                                   compat=sorted(compat))
    client_id, code, sid = client.client_id, secrets.token_urlsafe(32), secrets.token_urlsafe()
    login = dict(id_nat=id_nat, sid=sid, auth_time=now(), acr="eidas1",
                 amr=["sc", "pin", "mfa"], auth_mode="CARD")
    db.session.add(LoginSession(**login, expires_at=now() + 3600))
    db.session.add(AuthorizationCode(
        **login, code_hash=digest(code), grant_id=secrets.token_urlsafe(24),
        client_id=client_id, redirect_uri=REDIRECT, scope=scope, expires_at=now() + 60))
    db.session.commit()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = app.test_client().post(
        ISSUER_PATH + PATHS["token_endpoint"], base_url=BASE_URL,
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def userinfo(app, token: str):
    return app.test_client().get(ISSUER_PATH + PATHS["userinfo_endpoint"], base_url=BASE_URL,
                                 headers={"Authorization": f"Bearer {token}"})


def several_activities() -> str:
    """A practitioner of PSC's extract with activities in several places."""
    import_file(PSC51)
    import_file(DEMO)
    for (id_nat,) in db.session.execute(db.select(ProfessionalDocument.id_nat)).all():
        exercices = professional_claims(find_active(id_nat))["SubjectRefPro"]["exercices"]
        if sum(len(e["activities"]) for e in exercices) > 1:
            return id_nat
    raise AssertionError("no practitioner with several activities in the extracts")


@pytest.mark.parametrize("scope", ["openid scope_all", "openid"])
def test_stored_claims_serve_userinfo_as_the_tables_did(app, scope):
    busy = several_activities()
    for id_nat, compat in itertools.product((busy, KIT), FLAG_SETS):
        served = userinfo(app, access_token(app, id_nat, scope, compat))
        assert served.status_code == 200, served.get_json()
        expected = app.json.response(built_from_the_tables(id_nat, scope, compat))
        assert served.get_data() == expected.get_data(), (id_nat, sorted(compat))


def test_a_professional_without_stored_claims_is_not_served(app):
    import_file(DEMO)
    token = access_token(app, KIT, "openid scope_all", frozenset())
    assert userinfo(app, token).status_code == 200
    db.session.execute(db.delete(ProfessionalDocument).where(
        ProfessionalDocument.id_nat == KIT))
    db.session.commit()
    refused = userinfo(app, token)
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_token"
