"""PSC's professional claims built from the directory: psc.md §3's userinfo reproduced key
for key from the demo extract, the per-client spellings, ID token names, nomenclatures."""

import json
from pathlib import Path

import pytest

from psc_idp.directory import nomenclatures
from psc_idp.directory.claims import (
    COMPAT_OTHER_IDS,
    COMPAT_TOP_LEVEL_CIVILITE,
    professional_claims,
)
from psc_idp.directory.importer import import_file
from psc_idp.directory.lookup import find_active
from psc_idp.oidc.claims import identity_claims, userinfo_claims
from psc_idp.oidc.consts import PALIER
from psc_idp.oidc.subject import Subject, subject_identifier
from tests.directory_fixtures import DEMO, KIT, SAMPLES, directory_app

EXAMPLE = json.loads((Path(__file__).parent / "psc_userinfo_example.json").read_text())


@pytest.fixture
def app(keys_dir, database_url):
    yield from directory_app(keys_dir, database_url)


def test_userinfo_of_the_demo_identity_is_psc_example(app):
    import_file(DEMO)
    claims = {"sub": subject_identifier(KIT), **professional_claims(find_active(KIT)),
              "authMode": "CARD", "Palier_Authentification": PALIER}
    assert claims == EXAMPLE
    assert json.dumps(claims, sort_keys=True) == json.dumps(EXAMPLE, sort_keys=True)


def test_userinfo_endpoint_claims_keep_psc_key_order(app):
    import_file(DEMO)
    subject = Subject(id_nat=KIT, sid="s", auth_time=0, acr="eidas1", auth_mode="CARD")
    claims = userinfo_claims(subject, "openid scope_all")
    assert json.dumps(claims) == json.dumps(EXAMPLE)


def test_compatibility_spellings(app):
    import_file(DEMO)
    practitioner = find_active(KIT)
    renamed = professional_claims(practitioner, compat=frozenset({COMPAT_OTHER_IDS}))
    assert "otherIds" not in renamed and renamed["otherIDs"] == EXAMPLE["otherIds"]
    moved = professional_claims(practitioner, compat=frozenset({COMPAT_TOP_LEVEL_CIVILITE}))
    assert moved["codeCivilite"] == "M" and "codeCivilite" not in moved["SubjectRefPro"]
    assert professional_claims(practitioner, compat=frozenset({"unknown"})) == \
        professional_claims(practitioner)


def test_claims_of_sample_practitioners(app):
    import_file(SAMPLES[0])
    roleau = professional_claims(find_active("810107592585"))
    assert (roleau["given_name"], roleau["family_name"]) == ("PIERRE", "ROLEAU")
    assert (roleau["Secteur_Activite"], roleau["SubjectOrganization"],
            roleau["SubjectOrganizationID"]) == ("", "", "")
    assert roleau["SubjectRole"] == ["70^1.2.250.1.213.1.1.5.5"]
    (activity,) = roleau["SubjectRefPro"]["exercices"][0]["activities"]
    assert activity["codeGenreActivite"] == "GENR01"
    assert activity["autoriteDenregistrement"] == "CNOMK//"
    adeli = professional_claims(find_active("0012800728"))
    assert adeli["otherIds"] == [{"identifiant": "0012800728", "origine": "ADELI",
                                  "qualite": 1}]
    assert adeli["Secteur_Activite"] == "SA42^1.2.250.1.71.4.2.4"
    exercice = adeli["SubjectRefPro"]["exercices"][0]
    assert (exercice["codeTypeSavoirFaire"], exercice["codeSavoirFaire"]) == ("", "")
    assert len(exercice["activities"]) == 4


def test_every_claim_value_is_a_string_except_psc_ones(app):
    import_file(SAMPLES[0])
    claims = professional_claims(find_active("0012800728"))
    for activity in claims["SubjectRefPro"]["exercices"][0]["activities"]:
        assert all(isinstance(value, str) for value in activity.values())


def test_id_token_names(app):
    import_file(SAMPLES[0])
    subject = Subject(id_nat="810107592585", sid="s", auth_time=0, acr="eidas1")
    claims = identity_claims(subject, find_active("810107592585"))
    assert (claims["given_name"], claims["family_name"]) == ("PIERRE", "ROLEAU")


@pytest.mark.parametrize("system, code, label", [
    ("TRE_G15", "10", "Médecin"),
    ("TRE-R38-SpecialiteOrdinale", "SM26", "Qualifié en Médecine générale (SM)"),
    ("https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite",
     "SA07", "Cabinet individuel"),
    ("urn:oid:1.2.250.1.71.4.2.4", "SA33", "Pharmacie d'officine"),
    ("1.2.250.1.213.1.6.1.19", "GENR01", "Activité de soin et de pharmacie"),
    ("TRE_G15", "99", None),
    ("TRE_X99", "10", None),
    ("1.2.3", "10", None),
])
def test_nomenclature_labels(system, code, label):
    assert nomenclatures.label(system, code) == label


def test_profession_labels_include_titles():
    assert nomenclatures.profession_label("71") == "Ostéopathe"
    assert nomenclatures.profession_label("60") == "Infirmier"
    assert "TRE_R22" in nomenclatures.systems()
