"""Claims of ID tokens, access tokens and userinfo (OIDC Core §2, §5.3; RFC 9068 §2.2),
shaped like Pro Santé Connect's (psc.md §2-§3)."""

from __future__ import annotations

from ..directory.claims import professional_claims
from ..directory.lookup import find_active
from .consts import PALIER
from .subject import Subject


def identity_claims(subject: Subject, practitioner) -> dict:
    """The identity claims PSC puts in ID tokens and access tokens."""
    return {
        "authMode": subject.auth_mode,
        "preferred_username": subject.id_nat,
        "SubjectNameID": subject.id_nat,
        "given_name": practitioner.given_names.split("'")[0] if practitioner else "",
        "family_name": practitioner.family_name if practitioner else "",
    }


def login_claims(subject: Subject) -> dict:
    return {
        "auth_time": subject.auth_time, "acr": subject.acr, "amr": subject.amr,
        "sid": subject.sid,
    }


def userinfo_claims(subject: Subject, scope: str, compat=frozenset()) -> dict | None:
    """Userinfo for ``scope`` (``scope_all`` gives the full PSC structure), or None when
    the professional is no longer active in the directory."""
    practitioner = find_active(subject.id_nat)
    if practitioner is None:
        return None
    claims = {"sub": subject.get_user_id()}
    if "scope_all" in scope.split():
        claims.update(professional_claims(practitioner, compat=frozenset(compat)))
        claims["authMode"] = subject.auth_mode
        claims["Palier_Authentification"] = PALIER
        return _psc_order(claims)
    identity = identity_claims(subject, practitioner)
    return {**claims, **{name: identity[name] for name in MINIMAL if name in identity},
            "email_verified": False, "codeCivilite": practitioner.civilite,
            "authMode": subject.auth_mode}


#: userinfo without ``scope_all``: PSC's minimal identity (with ``codeCivilite``)
MINIMAL = ("preferred_username", "SubjectNameID", "given_name", "family_name")


_ORDER = ("sub", "preferred_username", "SubjectNameID", "given_name", "family_name",
          "email_verified", "authMode", "Palier_Authentification")


def _psc_order(claims: dict) -> dict:
    """Keep psc.md §3's key order: integrators diff against it."""
    head = {k: claims[k] for k in _ORDER if k in claims}
    return head | {k: v for k, v in claims.items() if k not in head}
