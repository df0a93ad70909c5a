"""psc-idp: an OpenID Connect identity provider for French health professionals,
wire-compatible with Pro Santé Connect."""

from .app import create_app

__all__ = ["create_app"]
