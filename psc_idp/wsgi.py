"""The WSGI application for production servers: ``gunicorn psc_idp.wsgi:app`` (settings
from ``PSC_IDP_CONFIG`` and ``PSC_IDP_*``; see config/gunicorn.conf.py). Each process runs
its audit sequencer, back-channel logout sender and CIBA ping sender from its first request
on, under any WSGI server (gunicorn's ``post_fork`` in config/gunicorn.conf.py starts them
before)."""

from . import audit_sequencer
from .app import create_app
from .ciba import ping as ciba_ping
from .oidc import backchannel

app = create_app()


@app.before_request
def _audit_sequencer_running() -> None:
    audit_sequencer.start(app)
    backchannel.start(app)
    ciba_ping.start(app)
