"""Decoupled login (OpenID CIBA Core 1.0): a client asks, the professional approves on
their e-CPS phone (``MOBILE``) or with their CPS card in a desktop tool (``CARD``), the
client polls the token endpoint (or is pinged). All state is in the database."""
