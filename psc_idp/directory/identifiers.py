"""National identifiers of health professionals (psc.md §4): the RPPS number and its Luhn
check digit, ADELI numbers, and the idNat built as ``<type prefix><identifier>``."""

from __future__ import annotations

import re

#: identifier type prefix (the extract's "Type d'identifiant PP") → origin name
ADELI, RPPS, FINESS_STAFF, SIRET_STAFF = "0", "8", "3", "5"
ORIGINS = {ADELI: "ADELI", RPPS: "RPPS", FINESS_STAFF: "FINESS", SIRET_STAFF: "SIRET"}
ID_NAT_MAX_LENGTH = 40

_RPPS = re.compile(r"[0-9]{11}")
_ADELI = re.compile(r"(?:[0-9]{2}|2[AB])[0-9]{7}")  # 9 characters; Corsica is 2A / 2B
_STAFF = {FINESS_STAFF: re.compile(r"[0-9AB]{9}/\S+"), SIRET_STAFF: re.compile(r"[0-9]{14}/\S+")}


class IdentifierError(ValueError):
    """An identifier is malformed or inconsistent; the message says why, for the report."""


def luhn_valid(digits: str) -> bool:
    """True if the last digit of ``digits`` is the Luhn check digit of the others."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
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
