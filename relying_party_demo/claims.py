"""Reading PSC claims the way a health app needs them: labels from the national code tables,
the list of activities to choose from, and the tokens decoded for the developer panel."""

from __future__ import annotations

import base64
import hashlib
import json

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from psc_idp.directory.nomenclatures import label, profession_label

__all__ = ["label", "profession_label", "activities", "decode_jwt", "SOURCES", "coded"]


def coded(system: str, code: str) -> str:
    """``label (code)``, or the bare code when the table does not know it."""
    if not code:
        return ""
    found = label(system, code)
    return f"{found} ({code})" if found else code


def activities(userinfo: dict) -> list[dict]:
    """Every activity of every profession, with a stable key for the choice form."""
    found = []
    for e_index, exercice in enumerate(userinfo.get("SubjectRefPro", {}).get("exercices", [])):
        for a_index, activity in enumerate(exercice.get("activities", [])):
            material = json.dumps([exercice.get("codeProfession"), activity], sort_keys=True)
            found.append({
                "key": hashlib.sha256(material.encode()).hexdigest()[:16],
                "exercice": exercice, "activity": activity,
                "position": (e_index, a_index),
            })
    return found


def decode_jwt(token: str, jwks: dict) -> dict:
    """Header and payload of a compact JWS, and whether its signature verifies against
    the IdP's published keys."""
    parts = token.split(".")
    header, payload = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
                       for p in parts[:2])
    try:
        jws.deserialize_compact(token, KeySet.import_key_set(jwks),
                                algorithms=[header.get("alg", "")])
        verified = True
    except (JoseError, ValueError):
        verified = False
    return {"header": header, "payload": payload, "verified": verified, "raw": token}


#: where each claim comes from (shown in the developer panel)
SOURCES = {
    "sub": "f:<realm uuid>:<idNat> — stable per professional",
    "preferred_username": "idNat: 8 + RPPS (or 0 + ADELI, 3/5 for staff)",
    "SubjectNameID": "idNat, same as preferred_username (PSC spelling)",
    "given_name": "directory: first of the first names",
    "family_name": "directory: family name",
    "acr": "login method → acr (eidas1 for card and e-CPS)",
    "amr": "RFC 8176: sc pin mfa (card), hwk pin mfa (e-CPS)",
    "authMode": "CARD or MOBILE",
    "auth_time": "when the professional actually logged in (SSO may reuse it)",
    "sid": "IdP session id, also in logout",
    "SubjectRefPro": "directory (RASS): professions, savoir-faire, activities — userinfo only",
    "SubjectOrganization": "directory: structure of the first activity",
    "Secteur_Activite": "directory: sector of the first activity (code^OID)",
    "otherIds": "identifiers with their origin (RPPS/ADELI)",
}
