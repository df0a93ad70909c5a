"""Bearer authentication of the admin API and of dynamic registration (RFC 6750 errors)."""

from __future__ import annotations

from functools import wraps

from flask import g, jsonify, request

from . import models


def bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def unauthorized(description: str, status: int = 401):
    response = jsonify(error="invalid_token", error_description=description)
    response.status_code = status
    response.headers["WWW-Authenticate"] = 'Bearer realm="psc-idp", error="invalid_token"'
    return response


def require_key(scope: str):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = models.find_valid(bearer(), scope)
            if key is None:
                return unauthorized(f"a valid {scope} access token is required")
            g.access_key = key
            return view(*args, **kwargs)
        return wrapper
    return decorator
