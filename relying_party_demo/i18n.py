"""The demo's texts, French by default, English available (``?lang=en``), and JWT times
(``exp``, ``iat``, ``auth_time``: seconds since 1970) as dates a person reads."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

#: the time zone of the dates shown (PSC's users are in France)
ZONE = ZoneInfo("Europe/Paris")
#: the claims that are NumericDate values (RFC 7519 §2)
DATE_CLAIMS = ("exp", "iat", "auth_time", "nbf")
MONTHS = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}

TEXTS = {
    "fr": {
        "title": "Application de démonstration", "login": "Se connecter avec Pro Santé Connect",
        "intro": "Cette application montre ce qu'une application de santé reçoit de psc-idp.",
        "timed_out": "Votre session dans l'application a expiré. La session Pro Santé Connect "
                     "reste ouverte : reconnectez-vous sans ressaisir votre code.",
        "identity": "Identité", "id_nat": "Identifiant national (idNat)", "rpps": "RPPS",
        "professions": "Professions et savoir-faire", "profession": "Profession",
        "category": "Catégorie", "savoir_faire": "Savoir-faire",
        "activities": "Activités", "choose": "Choisissez l'activité sous laquelle vous "
        "travaillez pendant cette session", "use": "Utiliser cette activité",
        "chosen": "Activité choisie", "structure": "Structure", "address": "Adresse",
        "mode": "Mode d'exercice", "sector": "Secteur", "role": "Rôle",
        "developer": "Panneau développeur", "logout": "Se déconnecter",
        "refresh": "Rafraîchir les jetons", "back": "Retour", "verified": "signature vérifiée",
        "not_verified": "signature NON vérifiée", "source": "Provenance",
        "auth": "Authentification", "error": "Erreur de connexion", "language": "English",
        "other_lang": "en", "signed_out": "Vous êtes déconnecté(e).",
        "logged_in_at": "connecté le", "date": "{day} {month} {year} à {time} (heure de Paris)",
        "try": "Pour essayer dans le bac à sable",
        "try_card": "Carte CPS de test : CPS-899700245667 (Dr KIT), code PIN 1234 "
                    "(softhsm/card-curl, ou le module PKCS#11 de SoftHSM dans le navigateur).",
        "try_ecps": "e-CPS : l'identifiant 899700245667, puis le téléphone de test psc-ecps ou "
                    "le téléphone dans le navigateur (/ecps/phone sur psc-idp).",
        "try_docs": "Intégrer votre application : docs/integrating.md.",
    },
    "en": {
        "title": "Demo application", "login": "Sign in with Pro Santé Connect",
        "intro": "This application shows what a health app receives from psc-idp.",
        "timed_out": "Your session in the app expired. The Pro Santé Connect session is still "
                     "open: sign in again without re-entering your PIN.",
        "identity": "Identity", "id_nat": "National identifier (idNat)", "rpps": "RPPS",
        "professions": "Professions and qualifications", "profession": "Profession",
        "category": "Category", "savoir_faire": "Qualification",
        "activities": "Activities", "choose": "Choose the activity you work under for this "
        "session", "use": "Use this activity", "chosen": "Chosen activity",
        "structure": "Organisation", "address": "Address", "mode": "Practice mode",
        "sector": "Sector", "role": "Role", "developer": "Developer panel",
        "logout": "Sign out", "refresh": "Refresh the tokens", "back": "Back",
        "verified": "signature verified", "not_verified": "signature NOT verified",
        "source": "Source", "auth": "Authentication", "error": "Sign-in error",
        "language": "Français", "other_lang": "fr", "signed_out": "You are signed out.",
        "logged_in_at": "signed in on", "date": "{day} {month} {year}, {time} (Paris time)",
        "try": "To try it in the sandbox",
        "try_card": "Test CPS card: CPS-899700245667 (Dr KIT), PIN 1234 (softhsm/card-curl, "
                    "or SoftHSM's PKCS#11 module in the browser).",
        "try_ecps": "e-CPS: the identifier 899700245667, then the psc-ecps test phone or the "
                    "phone in the browser (/ecps/phone on psc-idp).",
        "try_docs": "Integrating your application: docs/integrating.md.",
    },
}


def readable_time(seconds: object, lang: str) -> str:
    """``1796000000`` → ``30 novembre 2026 à 01:53:20 (heure de Paris)``; anything that is
    not a NumericDate is returned as it came."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return str(seconds)
    try:
        moment = datetime.fromtimestamp(seconds, ZONE)
    except (OverflowError, OSError, ValueError):
        return str(seconds)
    day = "1er" if lang == "fr" and moment.day == 1 else moment.day
    return TEXTS[lang]["date"].format(day=day, month=MONTHS[lang][moment.month - 1],
                                      year=moment.year, time=moment.strftime("%H:%M:%S"))
