"""Endpoints beside the grants: introspection (RFC 7662), revocation (RFC 7009),
userinfo (OIDC Core §5.3) and RP-initiated logout (OIDC RP-Initiated Logout 1.0)."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749 import InvalidRequestError, TokenValidator
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import Response, jsonify
from flask import request as flask_request

from ..extensions import db, idp
from ..keys import jws
from . import revocation
from .claims import userinfo_claims
from .consts import TOKEN_AUTH_METHODS
from .dpop_binding import DPoPTokenValidator, refuse_as_bearer
from .errors import printable
from .issued import IssuedToken, access, find_token
from .models import digest, now
from .mtls_binding import check_access_token
from .tokens import REFRESH, access_claims

AUTH_METHODS = list(TOKEN_AUTH_METHODS)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return not client.is_public  # any authenticated resource server (RFC 7662 §4)

    def introspect_token(self, token: IssuedToken):
        """RFC 7662 §2.2 as PSC answers (psc.md §2): the token's claims plus ``active``,
        ``client_id``, ``username``; ``SubjectNameID`` for access tokens only."""
        row = token.row
        if token.kind == "access_token":  # cnf in the claims: RFC 9449 §6.2, RFC 8705 §3.2
            return {"active": True, **token.claims, "client_id": row.client_id,
                    "username": row.id_nat,
                    "token_type": "DPoP" if row.dpop_jkt else "Bearer",
                    "SubjectNameID": row.id_nat}
        client = token.get_client()
        public = client is not None and client.is_public  # bound refresh tokens (§4, §5)
        claims = access_claims(
            row.client_id, token.get_user(), row.scope, jti=digest(row.refresh_hash)[:32],
            issued=row.issued_at, expires=row.refresh_expires_at, kind=REFRESH,
            psc_shape=client is None or client.access_token_format != "rfc9068",
            jkt=row.dpop_jkt if public else None, x5t=row.x5t_s256 if public else None)
        return {"active": True, **claims, "client_id": row.client_id, "username": row.id_nat,
                "token_type": "refresh_token"}


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = [*AUTH_METHODS, "none"]

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: IssuedToken, request):
        if token.kind == "refresh_token":
            revocation.revoke_grant(token.row.grant_id, reason="client_revocation",
                                    client_id=token.row.client_id)
        else:
            revocation.revoke_access_token(token.row)
        db.session.commit()


class AccessTokenValidator(TokenValidator):
    TOKEN_TYPE = "bearer"

    def authenticate_token(self, token_string):
        return access(token_string, document=True) if token_string else None

    def validate_token(self, token, scopes, request):
        if token is None or token.is_expired() or token.is_revoked():
            raise InvalidTokenError()
        refuse_as_bearer(token)
        check_access_token(token)  # RFC 8705 §3


def userinfo_response(token: IssuedToken):
    """OIDC Core §5.3.2: JSON, or a signed JWT when the client registered
    ``userinfo_signed_response_alg``."""
    client = token.get_client()
    claims = userinfo_claims(token.get_user(), token.scope, compat=client.compat,
                             document=token.document())
    if claims is None:
        raise InvalidTokenError(description="the professional is no longer active")
    alg = client.userinfo_signed_response_alg
    if not alg:
        return jsonify(claims)
    issued = now()
    claims |= {"iss": idp().settings.issuer, "aud": client.client_id, "iat": issued,
               "exp": issued + idp().settings.access_token_lifetime}
    return Response(jws.encode(claims, idp().keys.signer(alg)), mimetype="application/jwt")


class UserinfoProtector(ResourceProtector):
    """The access token in the ``Authorization`` header (RFC 6750 §2.1) or in a form body
    (§2.2); both at once, or the body parameter twice, is ``invalid_request`` (§2, §3.1)."""

    def parse_request_authorization(self, request):
        in_body = []
        if flask_request.method == "POST" and \
                flask_request.mimetype == "application/x-www-form-urlencoded":
            in_body = flask_request.form.getlist("access_token")
        if in_body and (len(in_body) > 1 or request.headers.get("Authorization")):
            raise InvalidRequestError("send the access token once: in the Authorization "
                                      "header or in the form body")
        if in_body:
            return self.get_token_validator("bearer"), in_body[0]
        return super().parse_request_authorization(request)


def protector() -> ResourceProtector:
    resource = UserinfoProtector()
    resource.register_token_validator(AccessTokenValidator())
    resource.register_token_validator(DPoPTokenValidator("userinfo_endpoint"))
    return resource


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self):
        return idp().keys.jwks()

    def validate_request(self, request):
        """RP-Initiated Logout §3-§4: a ``post_logout_redirect_uri`` that is not registered
        for the client makes the request invalid: refused before anything ends."""
        end = super().validate_request(request)
        wanted = request.payload.data.get("post_logout_redirect_uri")
        if wanted and end.redirect_uri is None:
            raise InvalidRequestError(not_redirected(printable(wanted), end.client))
        return end

    def end_session(self, end_session_request):
        from flask import session

        sid = (end_session_request.id_token_claims or {}).get("sid") or session.get("sid")
        end_sso_session(sid)
        session.pop("sid", None)


def not_redirected(uri: str, client) -> str:
    """Why the logout stops on psc-idp's page instead of going to ``uri``: what the
    developer must register or send."""
    if client is None:
        return (f"post_logout_redirect_uri {uri} was sent without id_token_hint nor "
                "client_id: psc-idp cannot tell which application registered it; send "
                "id_token_hint")
    if uri not in client.client_metadata.get("post_logout_redirect_uris", []):
        return (f"this application ({printable(client.client_id)}) has not registered "
                f"post-logout URI {uri}: register it (psc-idp clients update "
                f"{printable(client.client_id)} --post-logout-redirect-uri {uri}, which "
                "replaces the list) or omit it")
    return (f"post-logout URI {uri} is registered, but psc-idp redirects there only when "
            "the request carries id_token_hint (RP-Initiated Logout section 3): send the ID "
            "token as id_token_hint")


def end_sso_session(sid: str | None) -> None:
    """End the browser's SSO session and revoke its tokens (``oidc.revocation``)."""
    revocation.end_session(sid)
    db.session.commit()

