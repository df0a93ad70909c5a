"""One language per page: French by default, English on request (Accept-Language, the
authorization request's ui_locales, the page's switch); the catalogs are complete and
compiled; failure pages say what to do next and lead back to the application."""

from __future__ import annotations

import gettext
import html
import re
import subprocess
from pathlib import Path

import pytest
import requests
from babel.messages.pofile import read_po

from psc_idp.app import create_app
from psc_idp.errors import REASONS
from psc_idp.settings import SettingsError
from tests.plugins.idp import base_settings
from tests.support import Browser, query

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "psc_idp/translations/fr/LC_MESSAGES"


def french_catalog():
    with open(CATALOG / "messages.po", "rb") as file:
        return read_po(file, locale="fr")


def test_every_message_of_the_code_is_translated_and_compiled(tmp_path):
    """What the code and templates say is all in the French catalog, translated, not fuzzy,
    and the committed .mo is the compiled .po (scripts/translations update, then compile)."""
    pot = tmp_path / "messages.pot"
    subprocess.run([str(ROOT / ".venv/bin/pybabel"), "-q", "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "."],
                   cwd=ROOT, check=True)
    with open(pot, "rb") as file:
        extracted = {(m.context, m.id) for m in read_po(file) if m.id}
    catalog = french_catalog()
    translated = {(m.context, m.id): m.string for m in catalog
                  if m.id and not m.fuzzy and m.string
                  and all(m.string if isinstance(m.string, tuple) else [m.string])}
    assert extracted, "nothing extracted"
    assert sorted(extracted - set(translated)) == []
    with open(CATALOG / "messages.mo", "rb") as file:
        compiled = gettext.GNUTranslations(file)
    for key in extracted:
        context, msgid = key
        if isinstance(msgid, tuple):  # a plural: French's forms are n <= 1 and n > 1
            assert compiled.ngettext(*msgid, 1) == translated[key][0], key
            assert compiled.ngettext(*msgid, 2) == translated[key][1], key
        elif context:  # the same English word, another French one (e.g. a device "actif")
            assert compiled.pgettext(context, msgid) == translated[key], key
        else:
            assert compiled.gettext(msgid) == translated[key], key


def page_text(body: str) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def english_sentences() -> set[str]:
    """The catalog's English sentences that differ from their French translation."""
    return {m.id for m in french_catalog()
            if m.id and m.string and m.string != m.id and " " in m.id and "%(" not in m.id}


def login_page(idp, rp, headers=None, **params):
    session = requests.Session()
    session.trust_env = False
    start = session.get(rp.authorization_url(**params), verify=idp.ca, allow_redirects=False,
                        headers=headers or {}, timeout=10)
    assert start.status_code == 302, start.text
    location = requests.compat.urljoin(start.url, start.headers["Location"])
    return session, session.get(location, verify=idp.ca, headers=headers or {}, timeout=10)


def test_login_page_is_french_by_default_and_never_bilingual(idp):
    _, page = login_page(idp, idp.rp())
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    text = page_text(page.text)
    assert "Se connecter avec ma carte CPS" in text
    assert [s for s in english_sentences() if s in text] == []
    assert 'id="lang-switch"' in page.text and "lang=en" in page.text


def test_accept_language_ui_locales_and_the_switch_choose_english(idp):
    rp = idp.rp()
    _, by_header = login_page(idp, rp, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in by_header.text and "Sign in with my CPS card" in by_header.text
    # the application's ui_locales wins over the browser's languages (OIDC Core §3.1.2.1)
    session, by_request = login_page(idp, rp, headers={"Accept-Language": "fr-FR"},
                                     ui_locales="en-US fr")
    english = page_text(by_request.text)
    assert '<html lang="en">' in by_request.text and "Sign in with my CPS card" in english
    french = {m.string for m in french_catalog() if m.string and " " in m.string and
              m.string != m.id and "%(" not in m.string}
    assert [s for s in french if s in english] == []
    # the switch: this page in French, and the choice is remembered by the browser
    switch = html.unescape(re.search(r'id="lang-switch" href="([^"]+)"', by_request.text)[1])
    switched = session.get(requests.compat.urljoin(by_request.url, switch), verify=idp.ca,
                           timeout=10)
    assert '<html lang="fr">' in switched.text
    assert session.cookies.get("psc_idp_lang") == "fr"
    again = session.get(idp.issuer + "/help", verify=idp.ca, timeout=10,
                        headers={"Accept-Language": "en"})
    assert '<html lang="fr">' in again.text and "Aide à la connexion" in again.text


def test_a_refused_card_explains_itself_and_leads_back_to_the_application(
        idp, cards, demo_card, card_curl):
    """A revoked card: what happened, advice that fits (re-inserting will not help: no "try
    again"), and "back to the application", which the application receives as access_denied
    with its state and the issuer; the login is over."""
    rp = idp.rp()
    browser = Browser(idp.ca, card_curl)
    card_url = browser.start(rp.authorization_url(state="s&t=1 é"))
    status, _, body = card_curl(cards["CPS-REVOKED"], card_url)
    assert status == 403
    text = page_text(body)
    assert 'data-reason="revoked"' in body
    assert "Votre carte CPS a été révoquée" in text and "La réinsérer n'y changera rien" in text
    assert 'id="retry"' not in body
    # switching the language would load the card login again: this page offers no switch
    assert 'id="lang-switch"' not in body
    back = html.unescape(re.search(r'id="back-to-app" href="([^"]+)"', body)[1])
    assert back.startswith(idp.issuer + "/login/abandon?")
    answer = browser.get(back)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(rp.redirect_uri + "?")
    params = query(answer.headers["Location"])
    assert params == {"error": "access_denied", "state": "s&t=1 é", "iss": idp.issuer,
                      "error_description": params["error_description"]}
    # the login is over: it cannot be abandoned twice, nor finished with a good card
    assert browser.get(back).status_code == 400
    status, _, body = card_curl(demo_card, card_url)
    assert status == 400 and 'data-reason="login_expired"' in body


def test_no_card_offers_another_try(idp, card_curl):
    rp = idp.rp()
    browser = Browser(idp.ca, card_curl)
    card_url = browser.start(rp.authorization_url())
    status, _, body = card_curl(None, card_url)
    assert status == 403 and 'data-reason="no_certificate"' in body
    retry = html.unescape(re.search(r'id="retry" href="([^"]+)"', body)[1])
    assert retry.startswith(idp.issuer + "/login?tx=")
    assert browser.get(retry).status_code == 200  # the same login, still open


def test_every_refusal_reason_has_a_message_and_an_oauth_error():
    for reason, explained in REASONS.items():
        assert str(explained.message), reason
        assert explained.oauth_error in {"access_denied", "temporarily_unavailable"}, reason


def test_branding_comes_from_settings(keys_dir, tmp_path):
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    app = create_app(base_settings(
        keys_dir, f"sqlite:///{tmp_path / 'brand.sqlite3'}", brand_name="GHT Exemple",
        brand_colour="#005a9c", brand_logo=str(logo), operator_name="GHT Exemple",
        operator_contact="support@ght.example",
        brand_links={"legal": "https://ght.example/mentions"}))
    with app.app_context():
        from psc_idp.migrate import upgrade

        upgrade()
    client = app.test_client()
    page = client.get("/help", headers={"Accept-Language": "fr"})
    body = page.get_data(as_text=True)
    assert "<title>Aide — GHT Exemple</title>" in body
    assert 'href="https://ght.example/mentions"' in body
    assert 'href="mailto:support@ght.example"' in body
    style = client.get("/static/brand/style.css")
    assert style.get_data(as_text=True).strip() == ":root { --brand: #005a9c; }"
    assert "max-age=3600" in style.headers["Cache-Control"]
    image = client.get("/static/brand/logo")
    assert image.mimetype == "image/png" and image.data == logo.read_bytes()
    assert "max-age" in image.headers["Cache-Control"]
    image.close()


@pytest.mark.parametrize("setting", [
    {"brand_colour": "blue"}, {"brand_links": {"twitter": "https://x.example"}},
    {"brand_links": {"help": "javascript:alert(1)"}}, {"brand_logo": "/nonexistent.svg"},
])
def test_bad_branding_refuses_to_start(keys_dir, tmp_path, setting):
    with pytest.raises(SettingsError):
        create_app(base_settings(keys_dir, f"sqlite:///{tmp_path / 'b.sqlite3'}", **setting))
