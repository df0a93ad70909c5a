"""What every page shares: the operator's brand (service name, logo, colour, footer links:
settings ``brand_*`` and ``operator_*``) and psc-idp's own help, legal notice and
accessibility pages, which the footer links to unless the operator names their own."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, render_template, send_file, url_for
from flask_babel import lazy_gettext as _l

from .settings import current as settings

bp = Blueprint("pages", __name__)

#: how long browsers keep the brand's stylesheet and logo (they change with the settings only)
ASSET_MAX_AGE = 3600

FOOTER = (("help", _l("Help")), ("contact", _l("Contact")), ("legal", _l("Legal notice")),
          ("accessibility", _l("Accessibility: partially compliant")))


def setup(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(lambda: {"brand": brand()})


def brand() -> dict:
    config = settings()
    links = [(name, label, _link(name)) for name, label in FOOTER]
    return {
        "name": config.brand_name,
        "tagline": config.brand_tagline or _l("Sign-in for health professionals"),
        "logo": _idp_url("pages.brand_logo"),
        "stylesheet": _idp_url("pages.brand_css"),
        "links": [link for link in links if link[2]],
        "help": links[0][2],
        "operator": config.operator_name,
        "contact": config.operator_contact,
    }


def _link(name: str) -> str | None:
    config = settings()
    if name in config.brand_links:
        return config.brand_links[name]
    if name == "contact":
        contact = config.operator_contact
        return (contact if "://" in contact or contact.startswith("mailto:") else
                f"mailto:{contact}") if contact else None
    return _idp_url(f"pages.{name}")


def _idp_url(endpoint: str) -> str:
    return on_idp_origin(url_for(endpoint))


def on_idp_origin(path: str) -> str:
    """``path`` (from ``url_for``) on the IdP origin: pages served on the card origin link
    back to the IdP origin, where the login, its pages and the footer's pages live."""
    issuer = urlsplit(settings().issuer)
    return f"{issuer.scheme}://{issuer.netloc}{path}"


@bp.route("/static/brand/style.css")
def brand_css():
    colour = settings().brand_colour
    response = Response(f":root {{ --brand: {colour}; }}\n", mimetype="text/css")
    response.cache_control.public = True
    response.cache_control.max_age = ASSET_MAX_AGE
    return response


@bp.route("/static/brand/logo")
def brand_logo():
    path = settings().brand_logo
    if not path:
        path = str(Path(__file__).parent / "static" / "logo.svg")
    mimetype = mimetypes.guess_type(path)[0]
    if mimetype not in {"image/svg+xml", "image/png"}:
        abort(404)
    response = send_file(path, mimetype=mimetype, max_age=ASSET_MAX_AGE)
    # an SVG is a document: nothing in it may run or load anything
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@bp.route("/help")
def help():
    return render_template("pages/help.html")


@bp.route("/legal")
def legal():
    return render_template("pages/legal.html")


@bp.route("/accessibility")
def accessibility():
    return render_template("pages/accessibility.html")
