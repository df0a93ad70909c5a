"""The professional claims of PSC's userinfo for ``scope_all`` (psc.md §3), built from the
directory: identity, the first activity's organisation, and ``SubjectRefPro`` with one
``exercices[]`` entry per profession and one ``activities[]`` entry per place of practice.
Every code is a string; a value the directory lacks is an empty string, never absent."""

from __future__ import annotations

from .identifiers import ORIGINS
from .models import Activity, Exercice, Practitioner

#: OID of the TRE_R02 secteur d'activité code system, suffix of ``Secteur_Activite``
SECTEUR_ACTIVITE_OID = "1.2.250.1.71.4.2.4"
#: OID suffix of ``SubjectRole`` (profession codes, psc.md §3)
SUBJECT_ROLE_OID = "1.2.250.1.213.1.1.5.5"
PSI_LOCALE = "1.2.250.1.213.1.3.1.1"

#: Per-client compatibility flags (a client's ``compat`` list) for the spellings other PSC
#: samples show (psc.md §3): ``otherIDs`` instead of ``otherIds``, and ``codeCivilite`` at
#: the top level instead of inside ``SubjectRefPro``.
COMPAT_OTHER_IDS = "otherIDs"
COMPAT_TOP_LEVEL_CIVILITE = "top-level-codeCivilite"
COMPAT_FLAGS = frozenset({COMPAT_OTHER_IDS, COMPAT_TOP_LEVEL_CIVILITE})


def professional_claims(practitioner: Practitioner, compat=frozenset()) -> dict:
    """psc.md §3's userinfo except ``sub``, ``authMode`` and ``Palier_Authentification``,
    which the caller adds. ``compat``: flags among COMPAT_FLAGS; others are ignored."""
    first = _first_activity(practitioner)
    ref_pro = {"codeCivilite": practitioner.civilite,
               "exercices": [_exercice(e) for e in practitioner.exercices]}
    claims = {
        "preferred_username": practitioner.id_nat,
        "SubjectNameID": practitioner.id_nat,
        "given_name": practitioner.given_name,
        "family_name": practitioner.family_name,
        "email_verified": False,
        "Secteur_Activite": _coded(first.secteur_activite if first else "",
                                   SECTEUR_ACTIVITE_OID),
        "SubjectOrganization": first.raison_sociale if first else "",
        "SubjectOrganizationID": first.structure_id if first else "",
        "SubjectRole": _roles(practitioner),
        "PSI_Locale": PSI_LOCALE,
        "Mode_Acces_Raison": "",
        "Acces_Regulation_Medicale": "FAUX",
        "UITVersion": "1.0",
        "otherIds": [{"identifiant": practitioner.id_nat,
                      "origine": ORIGINS.get(practitioner.id_type, ""), "qualite": 1}],
        "SubjectRefPro": ref_pro,
    }
    if COMPAT_OTHER_IDS in compat:
        claims = _renamed(claims, "otherIds", "otherIDs")
    if COMPAT_TOP_LEVEL_CIVILITE in compat:
        claims = {"codeCivilite": ref_pro.pop("codeCivilite"), **claims}
    return claims


def _first_activity(practitioner: Practitioner) -> Activity | None:
    return next((a for e in practitioner.exercices for a in e.activities), None)


def _coded(code: str, oid: str) -> str:
    return f"{code}^{oid}" if code else ""


def _roles(practitioner: Practitioner) -> list[str]:
    codes = dict.fromkeys(e.profession for e in practitioner.exercices if e.profession)
    return [_coded(code, SUBJECT_ROLE_OID) for code in codes]


def _renamed(claims: dict, old: str, new: str) -> dict:
    return {(new if key == old else key): value for key, value in claims.items()}


def _exercice(exercice: Exercice) -> dict:
    """One profession. The claim has room for one savoir-faire: the first one listed."""
    savoir_faire = exercice.savoir_faire[0] if exercice.savoir_faire else None
    return {
        "codeProfession": exercice.profession,
        "codeCategorieProfessionnelle": exercice.categorie,
        "codeCiviliteDexercice": exercice.civilite_exercice,
        "nomDexercice": exercice.family_name,
        "prenomDexercice": exercice.given_name,
        "codeTypeSavoirFaire": savoir_faire.type_code if savoir_faire else "",
        "codeSavoirFaire": savoir_faire.code if savoir_faire else "",
        "activities": [_activity(a) for a in exercice.activities],
    }


def _activity(activity: Activity) -> dict:
    """One place of practice; ``codeGenreActivite`` is GENR01 for every activity imported
    from the national extract, which has no such column (see extract.py)."""
    return {
        "codeModeExercice": activity.mode_exercice,
        "codeSecteurDactivite": activity.secteur_activite,
        "codeSectionPharmacien": activity.section_pharmacien,
        "codeRole": activity.role,
        "codeGenreActivite": activity.genre_activite,
        "numeroSiretSite": activity.siret,
        "numeroSirenSite": activity.siren,
        "numeroFinessSite": activity.finess_site,
        "numeroFinessetablissementJuridique": activity.finess_juridique,
        "identifiantTechniqueDeLaStructure": activity.structure_id,
        "raisonSocialeSite": activity.raison_sociale,
        "enseigneCommercialeSite": activity.enseigne,
        "complementDestinataire": activity.complement_destinataire,
        "complementPointGeographique": activity.complement_geographique,
        "numeroVoie": activity.numero_voie,
        "indiceRepetitionVoie": activity.indice_repetition,
        "codeTypeDeVoie": activity.type_voie,
        "libelleVoie": activity.libelle_voie,
        "mentionDistribution": activity.mention_distribution,
        "bureauCedex": activity.bureau_cedex,
        "codePostal": activity.code_postal,
        "codeCommune": activity.code_commune,
        "codePays": activity.code_pays,
        "telephone": activity.telephone,
        "telephone2": activity.telephone2,
        "telecopie": activity.telecopie,
        "adresseEMail": activity.email,
        "codeDepartement": activity.code_departement,
        "ancienIdentifiantDeLaStructure": activity.ancien_identifiant,
        "autoriteDenregistrement": activity.autorite_enregistrement,
    }
