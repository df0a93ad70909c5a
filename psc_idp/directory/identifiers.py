"""National identifiers of health professionals (psc.md §4, §10): the RPPS number and its
Luhn check digit, ADELI numbers, the idNat built as ``<type prefix><identifier>``, PSI
identities (a UUID), and the alternative identifiers of PSC's extract (``Autres
identifiants``: ``identifier,origin,quality`` triples separated by ``;``).

PSC's loader makes none of these checks (it keys every line on the idNat): the importer
reports their findings as warnings (``identity_warnings``) and imports the line anyway."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: identifier type prefix (the extract's "Type d'identifiant PP") → origin name, as PSC's
#: directory API names them (psc-ps-api ``determineOriginAndType``)
ADELI, RPPS, FINESS_STAFF, SIRET_STAFF = "0", "8", "3", "5"
ORIGINS = {ADELI: "ADELI", "1": "CAB_ADELI", FINESS_STAFF: "FINESS", "4": "SIREN",
           SIRET_STAFF: "SIRET", "6": "CAB_RPPS", RPPS: "RPPS"}
PSI = "PSI"
#: origin of an idNat of no known shape (PSC's default)
OTHER_ORIGIN = "RASS"
ID_NAT_MAX_LENGTH = 40
#: sandbox test identities: RPPS numbers 997… (psc.md §4)
TEST_ID_NAT_PREFIX = "8997"

_RPPS = re.compile(r"[0-9]{11}")
_ADELI = re.compile(r"(?:[0-9]{2}|2[AB])[0-9]{7}")  # 9 characters; Corsica is 2A / 2B
_STAFF = {FINESS_STAFF: re.compile(r"[0-9AB]{9}/\S+"), SIRET_STAFF: re.compile(r"[0-9]{14}/\S+")}
_ADELI_ID_NAT = re.compile(r"0[0-9A-Za-z]{9}")
#: a digit → the digit sum of its double
_DOUBLED = str.maketrans("0123456789", "0246813579")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class IdentifierError(ValueError):
    """An identifier is malformed or inconsistent; the message says why, for the report."""


def luhn_valid(digits: str) -> bool:
    """True if the last digit of ``digits`` (ASCII digits) is the Luhn check digit of the
    others: the digits at odd places from the right count once, the others doubled (their
    digit sum, ``_DOUBLED``)."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    total = sum(map(int, digits[::-2])) + sum(map(int, digits[-2::-2].translate(_DOUBLED)))
    return total % 10 == 0


def is_rpps(value: str) -> bool:
    """An RPPS number: 11 digits, the last one the Luhn check digit of the first ten."""
    return bool(_RPPS.fullmatch(value)) and luhn_valid(value)


def check_identifier(id_type: str, identifier: str) -> None:
    """Raise IdentifierError unless ``identifier`` is well-formed for ``id_type``."""
    if id_type == RPPS:
        if not _RPPS.fullmatch(identifier):
            raise IdentifierError(f"RPPS {identifier!r} is not 11 digits")
        if not luhn_valid(identifier):
            raise IdentifierError(f"RPPS {identifier} has a wrong check digit (Luhn)")
    elif id_type == ADELI:
        if not _ADELI.fullmatch(identifier):
            raise IdentifierError(f"ADELI {identifier!r} is not 9 characters")
    elif id_type in _STAFF:
        if not _STAFF[id_type].fullmatch(identifier):
            raise IdentifierError(f"{ORIGINS[id_type]} staff identifier {identifier!r} "
                                  "is malformed")
    else:
        raise IdentifierError(f"unknown identifier type {id_type!r}")


def make_id_nat(id_type: str, identifier: str) -> str:
    """The idNat of a well-formed identifier: its type prefix then the identifier."""
    check_identifier(id_type, identifier)
    return id_type + identifier


def check_id_nat(id_type: str, identifier: str, id_nat: str) -> None:
    """Raise IdentifierError unless ``id_nat`` is exactly ``id_type + identifier`` and
    ``identifier`` is valid for its type (one line of the directory extract)."""
    if len(id_nat) > ID_NAT_MAX_LENGTH:
        raise IdentifierError(f"idNat longer than {ID_NAT_MAX_LENGTH} characters")
    if id_type + identifier != id_nat:
        raise IdentifierError(f"idNat {id_nat} does not match identifier type {id_type} "
                              f"+ identifier {identifier}")
    check_identifier(id_type, identifier)


def split_id_nat(id_nat: str) -> tuple[str, str]:
    """``(type, identifier)`` of a valid idNat; IdentifierError otherwise."""
    id_type, identifier = id_nat[:1], id_nat[1:]
    check_identifier(id_type, identifier)
    return id_type, identifier


#: why a typed idNat cannot be one (``id_nat_problem``), closed set
ID_NAT_PROBLEMS = ("empty", "not_digits", "rpps_length", "adeli_length", "prefix",
                   "check_digit", "malformed")


def id_nat_problem(id_nat: str) -> str | None:
    """Why ``id_nat``, as a professional typed it, cannot be an idNat (one of
    ``ID_NAT_PROBLEMS``), or None when its shape is right: ``8`` + RPPS (Luhn check digit),
    ``0`` + ADELI, a staff identifier (``3`` FINESS ``/`` …, ``5`` SIRET ``/`` …) or a PSI
    UUID (psc.md §4, §10). Shape only: whether it exists is the directory's business."""
    if not id_nat:
        return "empty"
    if is_psi(id_nat):
        return None
    id_type, identifier = id_nat[:1], id_nat[1:]
    if id_type in _STAFF:
        fits = len(id_nat) <= ID_NAT_MAX_LENGTH and _STAFF[id_type].fullmatch(identifier)
        return None if fits else "malformed"
    if id_type == ADELI and len(id_nat) != 10:
        return "adeli_length" if id_nat.isascii() and id_nat.isalnum() else "not_digits"
    if id_type == ADELI:
        return None if _ADELI.fullmatch(identifier) else "not_digits"
    if not (id_nat.isascii() and id_nat.isdigit()):
        return "not_digits"
    if len(id_nat) != 1 + 11:
        return "rpps_length"
    if id_type != RPPS:
        return "prefix"
    return None if luhn_valid(identifier) else "check_digit"


def is_psi(id_nat: str) -> bool:
    """A PSI identity (Pro Santé Identité): its idNat is a UUID (psc.md §10)."""
    return len(id_nat) == 36 and bool(_UUID.fullmatch(id_nat))


def is_adeli_id_nat(id_nat: str) -> bool:
    """An ADELI idNat by its shape alone: ``0`` then a 9-character ADELI number (10 in
    all). A PSI UUID may start with 0 too (UUID v7): it is not ADELI."""
    return bool(_ADELI_ID_NAT.fullmatch(id_nat))


def origin_of(id_nat: str) -> tuple[str, int]:
    """``(origin, quality)`` of an idNat as PSC derives them when the extract does not say:
    PSI (quality 2) for a UUID, else by the type prefix (quality 1)."""
    if is_psi(id_nat):
        return PSI, 2
    return ORIGINS.get(id_nat[:1], OTHER_ORIGIN), 1


def identity_warnings(id_type: str, identifier: str, id_nat: str, *,
                      test_ids: bool = False) -> list[str]:
    """What looks wrong in a line's identity columns; empty if nothing. PSI identities
    carry whatever type and identifier PSC's extractor wrote: not checked."""
    if is_psi(id_nat):
        return []
    found = []
    if id_type and id_type + identifier != id_nat:
        found.append(f"idNat {id_nat} does not match identifier type {id_type} "
                     f"+ identifier {identifier}")
    if id_type in (RPPS, ADELI) or id_type in _STAFF:
        try:
            check_identifier(id_type, identifier)
        except IdentifierError as exc:
            found.append(str(exc))
    elif id_type and id_type not in ORIGINS:
        found.append(f"unknown identifier type {id_type!r}")
    if test_ids and id_nat.startswith(TEST_ID_NAT_PREFIX):
        found.append(f"test identity {id_nat} (sandbox RPPS range 997…)")
    return found


@dataclass(frozen=True)
class OtherId:
    """One alternative identifier of a person: identifier, origin, quality (None when the
    extract leaves it empty)."""

    identifier: str
    origin: str
    quality: int | None


def parse_other_ids(text: str) -> list[OtherId]:
    """The triples of an ``Autres identifiants`` value (``id,ORIGIN,quality;…``), in file
    order, duplicates removed; a triple with no identifier is skipped."""
    found: dict[str, OtherId] = {}
    for triple in text.split(";"):
        identifier, _, rest = triple.partition(",")
        origin, _, quality = rest.partition(",")
        identifier, quality = identifier.strip(), quality.strip()
        if identifier and identifier not in found:
            found[identifier] = OtherId(identifier, origin.strip(),
                                        int(quality) if quality.isdigit() else None)
    return list(found.values())
