"""Test helpers for e-CPS: a phone (the ``psc-ecps`` simulator, over real HTTPS) and the
browser side of the e-CPS login page."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from urllib.parse import urljoin

from click.testing import CliRunner

from psc_idp.ecps import simulator

from .a11y import axe_violations, overflows  # noqa: F401 (e-CPS pages' checks)

PIN = "4321"


class Phone:
    def __init__(self, home, ca: str):
        self.home, self.ca = str(home), ca

    def run(self, *args: str, pin: str = PIN):
        result = CliRunner().invoke(simulator.main, list(args),
                                    env={"PSC_ECPS_HOME": self.home, "PSC_ECPS_PIN": pin})
        return result.exit_code, result.output

    def ok(self, *args: str) -> str:
        code, output = self.run(*args)
        assert code == 0, output
        return output

    def activate_qr(self, text: str) -> str:
        return self.ok("activate", "--qr", text, "--ca", self.ca)

    def pending(self) -> list[dict]:
        return json.loads(self.ok("pending", "--json"))

    def state(self):
        return simulator.Wallet(Path(self.home)).unlock(PIN)

    def decision(self, request: dict, decision: str = "approve", code: str | None = None,
                 key=None, kid: str | None = None) -> str:
        """A signed decision built by hand (to replay it or sign it with another key)."""
        state, own_key = self.state()
        claims = {"request": request["request"], "nonce": request["nonce"],
                  "decision": decision, "iat": int(time.time())}
        if code is not None:
            claims["code"] = code
        return simulator._sign(key or own_key, kid or state["device_id"], "ecps-decision+jwt",
                               claims)


def activate_with_card(idp, browser, card, phone: Phone) -> str:
    """Card login on the activation page, then the phone scans the QR code (text form)."""
    response = browser.get(idp.issuer + "/ecps/activate")
    assert response.status_code == 302 and "/card/login?tx=" in response.headers["Location"]
    status, headers, body = browser.card_curl(card, response.headers["Location"])
    assert status == 302, body
    back = browser.get(headers["location"])
    assert back.status_code == 302 and back.headers["Location"].endswith("/ecps/activate")
    page = browser.get(urljoin(back.url, back.headers["Location"]))
    assert page.status_code == 200
    text = html.unescape(re.search(r'id="ecps-qr-text">([^<]+)<', page.text).group(1))
    assert "<svg" in page.text
    return phone.activate_qr(text)


class EcpsPage:
    """The browser on the e-CPS waiting page."""

    def __init__(self, browser, response):
        self.browser, self.response = browser, response
        text = response.text
        self.code = re.search(r'id="ecps-code">(\d\d)<', text).group(1)
        self.status_url = urljoin(response.url, html.unescape(
            re.search(r'data-status-url="([^"]+)"', text).group(1)))
        self.done_url = urljoin(response.url, html.unescape(
            re.search(r'data-done-url="([^"]+)"', text).group(1)))

    def status(self) -> str:
        return self.browser.get(self.status_url).json()["status"]

    def done(self):
        return self.browser.get(self.done_url)


def start_ecps_login(browser, authorization_url: str, id_nat: str):
    """Authorization request → login page → idNat typed; returns the POST's response."""
    response = browser.get(authorization_url)
    login_url = urljoin(response.url, response.headers["Location"])
    page = browser.get(login_url)
    form = re.search(r'<form method="post" action="([^"]+)" id="ecps-login">(.*?)</form>',
                     page.text, re.S)
    fields = dict(re.findall(r'name="(csrf_token|tx)" value="([^"]+)"', form.group(2)))
    return browser.session.post(urljoin(login_url, html.unescape(form.group(1))),
                                data={**fields, "id_nat": id_nat}, allow_redirects=False,
                                timeout=10)


def ecps_page(browser, authorization_url: str, id_nat: str) -> EcpsPage:
    posted = start_ecps_login(browser, authorization_url, id_nat)
    assert posted.status_code == 303, posted.text
    return EcpsPage(browser, browser.get(urljoin(posted.url, posted.headers["Location"])))


def request_codes(browser, issuer: str, id_nat: str):
    """The activation-code form, filled in with ``id_nat``; returns the POST's response."""
    form = browser.get(issuer + "/ecps/activate/codes")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return browser.session.post(issuer + "/ecps/activate/codes",
                                data={"csrf_token": csrf, "id_nat": id_nat}, timeout=10)


def codes_sent(sms_outbox: Path, smtp_server, phone: str, email: str) -> list[tuple[str, str]]:
    """(SMS code, e-mail code) of every activation sent to ``phone`` and ``email``, oldest
    first (each send writes its e-mail, then its SMS)."""
    sms = [json.loads(p.read_text()) for p in sorted(Path(sms_outbox).glob("*.json"))]
    sms_codes = [re.search(r"(\d{8})", m["text"]).group(1) for m in sms if m["to"] == phone]
    mail_codes = [re.search(r"l'activer : (\d{8})", m.get_content()).group(1)
                  for m in smtp_server.to(email)]
    assert len(sms_codes) == len(mail_codes), (sms_codes, mail_codes)
    return list(zip(sms_codes, mail_codes, strict=True))
