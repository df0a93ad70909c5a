"""Administration: access keys (admin API tokens and RFC 7591 initial access tokens), the
admin REST API described by an OpenAPI document, and dynamic client registration."""
