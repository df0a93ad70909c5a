"""The WSGI application for production servers: ``gunicorn psc_idp.wsgi:app`` (settings
from ``PSC_IDP_CONFIG`` and ``PSC_IDP_*``; see config/gunicorn.conf.py)."""

from .app import create_app

app = create_app()
