"""Logging professionals in: the flow that ties an authorization request to a login
method, and the methods themselves (card; e-CPS later). Methods know nothing of OAuth:
they answer with an ``Outcome``."""
