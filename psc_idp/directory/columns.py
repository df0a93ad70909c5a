"""The columns of the national directory extract (psc.md §8, §10) in one table: for each,
its position in PSC's own 51-column extract, its header, the model attribute that stores
it and the userinfo claim that carries it (psc.md §3).

The extract is read by header names, not positions (``layout.py``): the classic file has
the first 49 columns, PSC's loader reads a 50th, ``Code genre activité`` (since 2022), and
PSC's extractor (``pscextract``) writes 51: the 49, ``Autres identifiants``, then
``Code genre d'activité``. Rows are in claim order within each part, which is also the
order of the classic file except for the genre d'activité (after ``codeRole`` in the claim).

Header spellings are matched loosely (``header_key``): case, accents, apostrophe kinds
(' ’ ‘ ` ´ ʼ), stray and non-breaking spaces and surrounding quotes do not matter."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: parts of a line: the key, the practitioner, the exercice (profession), one savoir-faire,
#: one activity (place of practice), and columns read but not stored (data minimisation)
KEY, PERSON, EXERCICE, SAVOIR_FAIRE, ACTIVITY, UNUSED = (
    "key", "person", "exercice", "savoir_faire", "activity", "unused")


@dataclass(frozen=True)
class Column:
    position: int  # 1-based, in PSC's 51-column extract
    header: str
    attribute: str  # model attribute, "" when not stored
    claim: str  # userinfo claim, "" when none
    part: str
    required: bool = True
    aliases: tuple[str, ...] = ()


def _c(position, header, attribute, claim, part, required=True, aliases=()) -> Column:
    return Column(position, header, attribute, claim, part, required, aliases)


COLUMNS: tuple[Column, ...] = (
    _c(3, "Identification nationale PP", "id_nat", "SubjectNameID", KEY),
    _c(1, "Type d'identifiant PP", "id_type", "", PERSON),
    _c(2, "Identifiant PP", "identifier", "", PERSON),
    _c(4, "Nom de famille", "family_name", "family_name", PERSON),
    _c(5, "Prénoms", "given_names", "given_name", PERSON),
    _c(11, "Téléphone (coord. correspondance)", "phone", "", PERSON),
    _c(12, "Adresse e-mail (coord. correspondance)", "email", "", PERSON),
    _c(13, "Code civilité", "civilite", "codeCivilite", PERSON),
    _c(50, "Autres identifiants", "other_ids", "otherIds", PERSON, required=False),
    _c(6, "Date de naissance", "", "", UNUSED, required=False),
    _c(7, "Code commune de naissance", "", "", UNUSED, required=False),
    _c(8, "Code pays de naissance", "", "", UNUSED, required=False),
    _c(9, "Lieu de naissance", "", "", UNUSED, required=False),
    _c(10, "Code sexe", "", "", UNUSED, required=False),
    _c(14, "Code profession", "profession", "codeProfession", EXERCICE),
    _c(15, "Code catégorie professionnelle", "categorie", "codeCategorieProfessionnelle",
       EXERCICE),
    _c(16, "Code civilité d'exercice", "civilite_exercice", "codeCiviliteDexercice",
       EXERCICE),
    _c(17, "Nom d'exercice", "family_name", "nomDexercice", EXERCICE),
    _c(18, "Prénom d'exercice", "given_name", "prenomDexercice", EXERCICE),
    _c(19, "Code type savoir-faire", "type_code", "codeTypeSavoirFaire", SAVOIR_FAIRE),
    _c(20, "Code savoir-faire", "code", "codeSavoirFaire", SAVOIR_FAIRE),
    _c(21, "Code mode exercice", "mode_exercice", "codeModeExercice", ACTIVITY),
    _c(22, "Code secteur d'activité", "secteur_activite", "codeSecteurDactivite", ACTIVITY),
    _c(23, "Code section tableau pharmaciens", "section_pharmacien", "codeSectionPharmacien",
       ACTIVITY),
    _c(24, "Code rôle", "role", "codeRole", ACTIVITY),
    _c(51, "Code genre activité", "genre_activite", "codeGenreActivite", ACTIVITY,
       required=False, aliases=("Code genre d'activité",)),
    _c(25, "Numéro SIRET site", "siret", "numeroSiretSite", ACTIVITY),
    _c(26, "Numéro SIREN site", "siren", "numeroSirenSite", ACTIVITY),
    _c(27, "Numéro FINESS site", "finess_site", "numeroFinessSite", ACTIVITY),
    _c(28, "Numéro FINESS établissement juridique", "finess_juridique",
       "numeroFinessetablissementJuridique", ACTIVITY),
    _c(29, "Identifiant technique de la structure", "structure_id",
       "identifiantTechniqueDeLaStructure", ACTIVITY),
    _c(30, "Raison sociale site", "raison_sociale", "raisonSocialeSite", ACTIVITY),
    _c(31, "Enseigne commerciale site", "enseigne", "enseigneCommercialeSite", ACTIVITY),
    _c(32, "Complément destinataire (coord. structure)", "complement_destinataire",
       "complementDestinataire", ACTIVITY),
    _c(33, "Complément point géographique (coord. structure)", "complement_geographique",
       "complementPointGeographique", ACTIVITY),
    _c(34, "Numéro Voie (coord. structure)", "numero_voie", "numeroVoie", ACTIVITY),
    _c(35, "Indice répétition voie (coord. structure)", "indice_repetition",
       "indiceRepetitionVoie", ACTIVITY),
    _c(36, "Code type de voie (coord. structure)", "type_voie", "codeTypeDeVoie", ACTIVITY),
    _c(37, "Libellé Voie (coord. structure)", "libelle_voie", "libelleVoie", ACTIVITY),
    _c(38, "Mention distribution (coord. structure)", "mention_distribution",
       "mentionDistribution", ACTIVITY),
    _c(39, "Bureau cedex (coord. structure)", "bureau_cedex", "bureauCedex", ACTIVITY),
    _c(40, "Code postal (coord. structure)", "code_postal", "codePostal", ACTIVITY),
    _c(41, "Code commune (coord. structure)", "code_commune", "codeCommune", ACTIVITY),
    _c(42, "Code pays (coord. structure)", "code_pays", "codePays", ACTIVITY),
    _c(43, "Téléphone (coord. structure)", "telephone", "telephone", ACTIVITY),
    _c(44, "Téléphone 2 (coord. structure)", "telephone2", "telephone2", ACTIVITY),
    _c(45, "Télécopie (coord. structure)", "telecopie", "telecopie", ACTIVITY),
    _c(46, "Adresse e-mail (coord. structure)", "email", "adresseEMail", ACTIVITY),
    _c(47, "Code département (coord. structure)", "code_departement", "codeDepartement",
       ACTIVITY),
    _c(48, "Ancien identifiant de la structure", "ancien_identifiant",
       "ancienIdentifiantDeLaStructure", ACTIVITY),
    _c(49, "Autorité d'enregistrement", "autorite_enregistrement", "autoriteDenregistrement",
       ACTIVITY),
)


def part(name: str) -> tuple[Column, ...]:
    """The columns of one part, in table (claim) order."""
    return tuple(c for c in COLUMNS if c.part == name)


def _by_position(limit: int) -> tuple[str, ...]:
    return tuple(c.header for c in sorted(COLUMNS, key=lambda c: c.position)
                 if c.position <= limit)


#: the classic 49-column header (psc.md §8)
HEADER = _by_position(49)
#: the 50th column of the national file as PSC's loader reads it (pscload)
GENRE_HEADER = "Code genre activité"
#: PSC's own 51-column extract, spelled as pscextract writes it (psc.md §10)
PSC_HEADER = (*HEADER, "Autres identifiants", "Code genre d'activité")

_APOSTROPHES = str.maketrans({q: " " for q in "'’‘`´ʼ′"})


def header_key(name: str) -> str:
    """``name`` as compared: no accents, no case, apostrophes and runs of (non-breaking)
    spaces as one space, no surrounding quotes."""
    text = unicodedata.normalize("NFKD", name.strip().strip('"').translate(_APOSTROPHES))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(text.split()).casefold()


#: header key → column, for every spelling accepted
BY_KEY: dict[str, Column] = {header_key(name): column for column in COLUMNS
                             for name in (column.header, *column.aliases)}
