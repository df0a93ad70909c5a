"""PSC's professional claims built from the directory: psc.md §3's userinfo reproduced key
for key from the demo extract, the per-client spellings, ID token names, nomenclatures; from
PSC's current extracts (§10): every savoir-faire, the genre d'activité and the other
identifiers of the file, PSI and EDIT subjects, persons without profession."""

import json
from pathlib import Path

import pytest

from psc_idp.directory import nomenclatures
from psc_idp.directory.claims import (
    COMPAT_FLAGS,
    COMPAT_OTHER_IDS,
    COMPAT_TOP_LEVEL_CIVILITE,
    COMPAT_TOP_LEVEL_GENRE,
    professional_claims,
)
from psc_idp.directory.importer import import_file
from psc_idp.directory.lookup import find_active
from psc_idp.oidc.claims import identity_claims, userinfo_claims
from psc_idp.oidc.consts import PALIER
from psc_idp.oidc.subject import Subject, subject_identifier
from tests.directory_fixtures import (
    BERARD,
    DEMO,
    DUPRE,
    EDIT_ID,
    GARCON,
    KIT,
    LEFEVRE,
    LEFEVRE_ADELI,
    PSC51,
    PSI_ID,
    RASS50,
    SAMPLES,
    directory_app,
)

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


# --- PSC's current extracts (psc.md §10) ---------------------------------------------------

def test_several_savoir_faire_give_one_exercice_entry_each(app):
    import_file(PSC51)
    claims = professional_claims(find_active(BERARD))
    exercices = claims["SubjectRefPro"]["exercices"]
    assert [(e["codeProfession"], e["codeTypeSavoirFaire"], e["codeSavoirFaire"])
            for e in exercices] == [("10", "S", "SM54"), ("10", "CAPA", "CAPA05")]
    assert list(exercices[0]) == list(EXAMPLE["SubjectRefPro"]["exercices"][0])
    for exercice in exercices:
        assert [(a["raisonSocialeSite"], a["codeGenreActivite"]) for a in
                exercice["activities"]] == [("CABINET DU DR BÉRARD", "GENR01"),
                                            ("CENTRE HOSPITALIER DE DÉMONSTRATION", "GENR03")]
    assert claims["SubjectRole"] == ["10^1.2.250.1.213.1.1.5.5"]
    assert claims["SubjectOrganization"] == "CABINET DU DR BÉRARD"


def test_genre_activite_from_the_50_column_file(app):
    import_file(RASS50)
    (activity,) = professional_claims(find_active(GARCON))["SubjectRefPro"]["exercices"][0][
        "activities"]
    assert (activity["codeGenreActivite"], activity["codeSectionPharmacien"]) == ("GENR02", "A")


def test_other_ids_come_from_autres_identifiants(app):
    import_file(PSC51)
    both = [{"identifiant": LEFEVRE, "origine": "RPPS", "qualite": 1},
            {"identifiant": LEFEVRE_ADELI, "origine": "ADELI", "qualite": 1}]
    assert professional_claims(find_active(LEFEVRE))["otherIds"] == both
    assert professional_claims(find_active(LEFEVRE_ADELI))["otherIds"] == both
    renamed = professional_claims(find_active(LEFEVRE), compat=frozenset({COMPAT_OTHER_IDS}))
    assert renamed["otherIDs"] == both


def test_psi_and_edit_identities_are_subjects_like_the_others(app):
    import_file(PSC51)
    for id_nat, origin, quality in ((PSI_ID, "PSI", 2), (EDIT_ID, "EDIT", 1)):
        subject = Subject(id_nat=id_nat, sid="s", auth_time=0, acr="eidas1", auth_mode="MOBILE")
        claims = userinfo_claims(subject, "openid scope_all")
        assert claims["sub"] == subject_identifier(id_nat) == \
            f"f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:{id_nat}"
        assert claims["preferred_username"] == claims["SubjectNameID"] == id_nat
        assert claims["otherIds"] == [{"identifiant": id_nat, "origine": origin,
                                       "qualite": quality}]
    psi = professional_claims(find_active(PSI_ID))
    assert psi["SubjectRole"] == ["93^1.2.250.1.213.1.1.5.5"]
    assert identity_claims(Subject(id_nat=PSI_ID, sid="s", auth_time=0, acr="eidas1"),
                           find_active(PSI_ID))["family_name"] == "ROUSSEL"


def test_person_without_profession(app):
    import_file(PSC51)
    claims = professional_claims(find_active(DUPRE))
    assert claims["SubjectRefPro"] == {"codeCivilite": "MME", "exercices": []}
    assert (claims["SubjectRole"], claims["Secteur_Activite"], claims["SubjectOrganization"],
            claims["SubjectOrganizationID"]) == ([], "", "", "")
    assert claims["otherIds"] == [{"identifiant": DUPRE, "origine": "RPPS", "qualite": 1}]


def test_compatibility_top_level_genre_activite(app):
    import_file(PSC51)
    flags = frozenset({COMPAT_TOP_LEVEL_GENRE, COMPAT_TOP_LEVEL_CIVILITE})
    claims = professional_claims(find_active(BERARD), compat=flags)
    assert list(claims)[:2] == ["codeCivilite", "codeGenreActivite"]
    assert claims["codeGenreActivite"] == "GENR01"  # the first activity's
    activities = claims["SubjectRefPro"]["exercices"][0]["activities"]
    assert [a["codeGenreActivite"] for a in activities] == ["GENR01", "GENR03"]
    alone = professional_claims(find_active(BERARD), compat=frozenset({COMPAT_TOP_LEVEL_GENRE}))
    assert alone["SubjectRefPro"]["codeCivilite"] == "MME"
    assert professional_claims(find_active(DUPRE), compat=flags)["codeGenreActivite"] == ""
    assert COMPAT_FLAGS == {"otherIDs", "top-level-codeCivilite", "top-level-codeGenreActivite"}
