"""The e-CPS login in a real headless Chromium: the professional types their idNat, the
page shows the code, the phone (simulator) approves, and the page continues by itself to
the relying party with a code that buys tokens."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

from .ecps_support import activate_with_card


def test_ecps_login_in_chromium(idp, browser, demo_card, phone_factory, chromium_page):
    phone = phone_factory("kit")
    activate_with_card(idp, browser, demo_card, phone)
    rp = idp.rp()
    landed = {}

    def relying_party(route):
        landed["url"] = route.request.url
        route.fulfill(status=200, content_type="text/html", body="<p id='rp'>RP</p>")

    page = chromium_page
    page.route("https://rp.example/**", relying_party)
    page.goto(rp.authorization_url())
    page.fill("#id_nat", "899700245667")
    page.click("#ecps-submit")
    code = page.text_content("#ecps-code").strip()
    assert len(code) == 2 and code.isdigit()

    approval = threading.Thread(target=phone.ok, args=("approve", "--code", code, "--wait", "10"))
    approval.start()
    page.wait_for_selector("#rp", timeout=20000)  # the page went on by itself
    approval.join()

    params = {k: v[0] for k, v in parse_qs(urlsplit(landed["url"]).query).items()}
    assert params["state"] == rp.state and params["iss"] == idp.issuer
    tokens = rp.exchange(params["code"]).json()
    claims = rp.verify_id_token(tokens["id_token"])
    assert claims["authMode"] == "MOBILE" and claims["preferred_username"] == "899700245667"
