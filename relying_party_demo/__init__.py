"""A small health app that logs professionals in with psc-idp (or Pro Santé Connect: only
the issuer URL changes), written the way an integrator would: Authlib's Flask client with
discovery, authorization code + PKCE S256, nonce, ``acr_values=eidas1`` and
``scope=openid scope_all``."""

from .app import create_app

__all__ = ["create_app"]
