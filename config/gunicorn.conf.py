# gunicorn settings for one psc-idp process group behind nginx (config/nginx/psc-idp.conf).
# psc-idp keeps no state in memory that a request needs later (everything is in
# PostgreSQL), so any number of these groups, on any number of machines, can serve any step
# of any flow. Start: gunicorn -c config/gunicorn.conf.py psc_idp.wsgi:app
import multiprocessing
import os

# A Unix socket in the instance's runtime directory (config/systemd/psc-idp@.service): only
# nginx (a member of the psc-idp group) can connect; nginx adds the proxy secret that lets
# psc-idp trust its headers (config/nginx/psc-idp.conf).
bind = os.environ.get("GUNICORN_BIND", "unix:/run/psc-idp-8000/http.sock")
umask = 0o007             # the socket: owner and group only
# Signing (RSA) is CPU-bound: one worker per core, a few threads for the PostgreSQL round
# trips. Waiting phones are not here: nginx routes their long poll to the e-CPS channel
# (psc-idp ecps channel); without that route a process holds at most ecps_poll_threads.
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 8))
timeout = 30              # a request taking longer is a bug or an outage: restart the worker
graceful_timeout = 20
keepalive = 5             # nginx keeps upstream connections open (keepalive 32)
max_requests = 20000      # recycle workers now and then
max_requests_jitter = 2000
limit_request_line = 8190
limit_request_fields = 60
forwarded_allow_ips = "127.0.0.1"
# one control socket per process group (several groups run on one machine)
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "/run/psc-idp-8000/gunicorn.ctl")
accesslog = "-"
# the path without its query (%(U)s, not the request line %(r)s) and no Referer: query
# strings carry one-time values (the card hand-off, codes, transaction ids)
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss "%(a)s" %({x-request-id}i)s'
errorlog = "-"


def post_fork(server, worker):
    # Each worker loads its own CRL copy and starts its own background refresher, and its
    # audit sequencer (one round at a time across all processes: psc_idp.audit_sequencer),
    # and its back-channel logout and CIBA ping senders (rows claimed one sender at a time).
    from psc_idp import audit_sequencer
    from psc_idp.ciba import ping as ciba_ping
    from psc_idp.oidc import backchannel
    from psc_idp.wsgi import app

    state = app.extensions["psc_idp"]
    state.cards.crls.start()
    if state.orgs is not None:  # the organisations' CRLs (tls_client_auth, RFC 8705)
        state.orgs.crls.start()
    audit_sequencer.start(app)
    backchannel.start(app)
    ciba_ping.start(app)


def worker_exit(server, worker):
    # The sequencer finishes its batch under way (its transaction commits or rolls back).
    from psc_idp import audit_sequencer
    from psc_idp.ciba import ping as ciba_ping
    from psc_idp.oidc import backchannel
    from psc_idp.wsgi import app

    audit_sequencer.stop(app)
    backchannel.stop(app)
    ciba_ping.stop(app)
