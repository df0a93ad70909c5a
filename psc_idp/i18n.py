"""One language per page: French by default, English when the professional or the application
asks for it (Flask-Babel, gettext catalogs in ``psc_idp/translations``; ``scripts/translations``
extracts and compiles them).

Which language, first match wins: the page's language switch (``?lang=en``, remembered in a
cookie), the authorization request's ``ui_locales`` (kept with the login transaction), the
browser's ``Accept-Language``, French."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from flask import Flask, Response, g, request
from flask_babel import Babel, format_datetime

#: the languages of psc-idp's pages, the default first (discovery's ui_locales_supported)
LOCALES = ("fr", "en")
DEFAULT = LOCALES[0]
COOKIE = "psc_idp_lang"
COOKIE_MAX_AGE = 365 * 86400
#: pages whose address does something (a card login, a hand-off, the end of a login): loading
#: them again to switch the language would do it again, so they offer no switch
NOT_REPEATABLE = {"card.card_login", "interaction.complete", "interaction.abandon", "ecps.done"}

babel = Babel()


def setup(app: Flask, *, cookie_secure: bool) -> None:
    babel.init_app(app, locale_selector=select_locale, default_locale=DEFAULT,
                   default_timezone="Europe/Paris")
    app.jinja_env.globals.update(language_switch=language_switch, current_locale=current_locale)
    app.add_template_filter(moment, "local_datetime")

    @app.after_request
    def remember_choice(response: Response) -> Response:
        chosen = _switched()
        if chosen and request.cookies.get(COOKIE) != chosen:
            response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE, secure=cookie_secure,
                                httponly=True, samesite="Lax")
        return response


#: a moment in a sentence or a list ("1 déc. 2026 à 23:05"), by language
LONG = {"fr": "d MMM y 'à' HH:mm", "en": "d MMM y 'at' HH:mm"}
#: a moment in a table column (French: 01/12/2026 23:05), by language
SHORT = {"fr": "short", "en": "medium"}


def moment(timestamp: float | None, styles: dict[str, str] = LONG) -> str:
    """``timestamp`` in the page's language and Paris time (babel's default timezone set
    above); "—" for none."""
    if timestamp is None:
        return "—"
    return format_datetime(dt.datetime.fromtimestamp(timestamp, dt.UTC),
                           styles.get(current_locale(), styles[DEFAULT]))


def use_ui_locales(value: str | None) -> None:
    """The authorization request's ``ui_locales`` (space-separated, by preference), for the
    pages of its login: call before anything on the page is translated."""
    g.psc_idp_ui_locales = value or ""


def select_locale() -> str:
    chosen = _switched() or request.cookies.get(COOKIE)
    if chosen in LOCALES:
        return chosen
    for tag in (g.get("psc_idp_ui_locales") or request.args.get("ui_locales") or "").split():
        language = tag.split("-")[0].lower()
        if language in LOCALES:
            return language
    return request.accept_languages.best_match(LOCALES, default=DEFAULT)


def current_locale() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale else DEFAULT


def language_switch() -> tuple[str, str, str] | None:
    """(url, language, label) of this page in the other language, or None where the page
    cannot be fetched again (an answer to a form)."""
    if request.method != "GET" or request.endpoint in NOT_REPEATABLE:
        return None
    other = "en" if current_locale() == "fr" else "fr"
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    args.append(("lang", other))
    label = "English" if other == "en" else "Français"
    return f"{request.script_root}{request.path}?{urlencode(args)}", other, label


def _switched() -> str | None:
    value = request.args.get("lang")
    return value if value in LOCALES else None
