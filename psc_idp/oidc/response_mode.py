"""How the authorization response goes back to the client (OAuth 2.0 Multiple Response Type
Encoding Practices §2.1, OAuth 2.0 Form Post Response Mode §2): ``query`` (the default of
the code flow) or ``form_post``, an HTML form the browser submits by itself with a script
served by psc-idp (no inline script: the page works under a strict Content Security
Policy). Any other mode is refused, never silently answered another way."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Response, make_response, render_template

from .errors import printable

MODES = ("query", "form_post")
FORM_POST_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; base-uri 'none'; "
                 "frame-ancestors 'none'")


def supported(mode: str | None) -> bool:
    return mode in (None, "", *MODES)


def check(mode: str | None, redirect_uri: str) -> None:
    """An unsupported ``response_mode`` is an error the client receives (by query)."""
    if not supported(mode):
        raise InvalidRequestError(f"response_mode '{printable(mode, 40)}' is not supported: "
                                  "use query or form_post", redirect_uri=redirect_uri)


def deliver(response: Response, redirect_uri: str, mode: str | None) -> Response:
    """``response`` (a redirect to ``redirect_uri`` carrying the result in its query) as
    the client asked: unchanged for ``query``, as an auto-submitted form for
    ``form_post``."""
    if mode != "form_post" or response.status_code != 302:
        return response
    location = response.headers["Location"]
    own = parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True)
    params = parse_qsl(urlsplit(location).query, keep_blank_values=True)[len(own):]
    page = make_response(render_template("form_post.html", action=redirect_uri,
                                         params=params))
    page.headers["Content-Security-Policy"] = FORM_POST_CSP
    page.headers["Cache-Control"] = "no-store"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page
