"""CPS cards: where the client certificate comes from (``source``), how it is validated
(``verify``: chain, validity, usage, revocation) and the CRL cache (``crl``)."""
