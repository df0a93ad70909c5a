"""Claims of ID tokens, access tokens and userinfo (OIDC Core §2, §5.3; RFC 9068 §2.2),
shaped like Pro Santé Connect's (psc.md §2-§3)."""

from __future__ import annotations

from ..directory.claims import apply_compat
from ..directory.lookup import find_identity, professional_document
from .consts import PALIER
from .subject import Subject


def identity_claims(subject: Subject, practitioner) -> dict:
    """The identity claims PSC puts in ID tokens and access tokens (``practitioner``: the
    active one, or None)."""
    return named_identity(subject, names(practitioner))


def named_identity(subject: Subject, names: tuple[str, str]) -> dict:
    """``identity_claims`` from the practitioner's (given names, family name), empty once
    they are no longer active."""
    given_names, family_name = names
    return {
        "authMode": subject.auth_mode,
        "preferred_username": subject.id_nat,
        "SubjectNameID": subject.id_nat,
        "given_name": given_names.split("'")[0],
        "family_name": family_name,
    }


def names_of(subject: Subject) -> tuple[str, str]:
    """The names read with the subject, or looked up (``directory.lookup``)."""
    if subject.names is not None:
        return subject.names
    return names(find_identity(subject.id_nat))


def names(practitioner) -> tuple[str, str]:
    return (practitioner.given_names, practitioner.family_name) if practitioner else ("", "")


def login_claims(subject: Subject) -> dict:
    return {
        "auth_time": subject.auth_time, "acr": subject.acr, "amr": subject.amr,
        "sid": subject.sid,
    }


#: ``userinfo_claims`` reads the stored claims itself
LOOK_UP = object()


def userinfo_claims(subject: Subject, scope: str, compat=frozenset(), *,
                    document=LOOK_UP) -> dict | None:
    """Userinfo for ``scope`` (``scope_all`` gives the full PSC structure) from the
    professional's stored claims (``directory.document``; ``document``: as read with the
    token, None when there is none), or None when they are no longer active in the
    directory."""
    if document is LOOK_UP:
        document = professional_document(subject.id_nat)
    if document is None:
        return None
    claims = {"sub": subject.get_user_id()}
    if "scope_all" in scope.split():
        claims.update(apply_compat(document, frozenset(compat)))
        claims["authMode"] = subject.auth_mode
        claims["Palier_Authentification"] = PALIER
        return _psc_order(claims)
    identity = named_identity(subject, (document["given_name"], document["family_name"]))
    return {**claims, **{name: identity[name] for name in MINIMAL if name in identity},
            "email_verified": False,
            "codeCivilite": document["SubjectRefPro"]["codeCivilite"],
            "authMode": subject.auth_mode}


#: userinfo without ``scope_all``: PSC's minimal identity (with ``codeCivilite``)
MINIMAL = ("preferred_username", "SubjectNameID", "given_name", "family_name")


_ORDER = ("sub", "preferred_username", "SubjectNameID", "given_name", "family_name",
          "email_verified", "authMode", "Palier_Authentification")


def _psc_order(claims: dict) -> dict:
    """Keep psc.md §3's key order: integrators diff against it."""
    head = {k: claims[k] for k in _ORDER if k in claims}
    return head | {k: v for k, v in claims.items() if k not in head}
