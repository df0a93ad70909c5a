"""Protocol literals of psc-idp and of the PSC wire contract (psc.md §1-§2)."""

ISSUER_PATH = "/auth/realms/esante-wallet"

PATHS = {
    "authorization_endpoint": "/protocol/openid-connect/auth",
    "token_endpoint": "/protocol/openid-connect/token",
    "userinfo_endpoint": "/protocol/openid-connect/userinfo",
    "introspection_endpoint": "/protocol/openid-connect/token/introspect",
    "revocation_endpoint": "/protocol/openid-connect/revoke",
    "end_session_endpoint": "/protocol/openid-connect/logout",
    "jwks_uri": "/protocol/openid-connect/certs",
    "backchannel_authentication_endpoint": "/protocol/openid-connect/ext/ciba/auth",
    "pushed_authorization_request_endpoint": "/protocol/openid-connect/ext/par/request",
}
#: RFC 8705 §5: the endpoints also served on the mTLS origin (``mtls_url``)
MTLS_ALIASED = ("token_endpoint", "introspection_endpoint", "revocation_endpoint",
                "userinfo_endpoint", "backchannel_authentication_endpoint",
                "pushed_authorization_request_endpoint")

#: scopes psc-idp knows (PSC advertises Keycloak's, psc.md §10): ``scope_all`` gives the
#: full professional userinfo; others requested are left out of the grant, never refused
SCOPES = ("openid", "scope_all", "profile", "email", "offline_access")
#: RFC 8705 §2: client authentication with the TLS client certificate, on the mTLS origin
MTLS_AUTH_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt",
                      *MTLS_AUTH_METHODS)
CLIENT_AUTH_METHODS = (*TOKEN_AUTH_METHODS, "none")
GRANT_TYPES = ("authorization_code", "refresh_token")
#: OpenID CIBA Core 1.0 §10.1; enabled per client by ``backchannel_token_delivery_mode``
CIBA_GRANT_TYPE = "urn:openid:params:grant-type:ciba"
#: RFC 8693 §2.1; for the clients ops allow audiences (``token_exchange_audiences``), over mTLS
TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
#: a client ``compat`` flag beside the claim spellings (``directory.claims.COMPAT_FLAGS``):
#: exchanged tokens carry PSC's EDC ``cnf.x5t#S256`` (base64 of the hexadecimal SHA-256)
#: instead of RFC 8705's (``oidc.token_exchange``)
COMPAT_EDC_X5T_HEX = "edc_x5t_hex"
#: CIBA Core §5: the token delivery modes psc-idp serves (push is not: PSC does not)
CIBA_DELIVERY_MODES = ("poll", "ping")

#: authMode claim by login method (psc.md §2)
AUTH_MODE = {"card": "CARD", "ecps": "MOBILE"}
METHOD_BY_AUTH_MODE = {mode: method for method, mode in AUTH_MODE.items()}
#: Palier_Authentification claim (psc.md §3)
PALIER = "APPPRIP3^1.2.250.1.213.1.5.1.1.1"

#: RFC 9126 §2.2: the request_uri of a pushed authorization request is this prefix + a
#: random reference
PAR_URN = "urn:ietf:params:oauth:request_uri:"

ACCESS_TOKEN_TYP = "at+jwt"
