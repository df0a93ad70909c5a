"""The OpenID Connect protocol layer: Authlib server, grants, endpoints, tokens."""
