# gunicorn settings for one psc-idp process group behind nginx (config/nginx/psc-idp.conf).
# psc-idp keeps no state in memory that a request needs later (everything is in
# PostgreSQL), so any number of these groups, on any number of machines, can serve any step
# of any flow. Start: gunicorn -c config/gunicorn.conf.py psc_idp.wsgi:app
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Signing (RSA) is CPU-bound: one worker per core, a few threads for the I/O waits
# (PostgreSQL round trips, the e-CPS long poll).
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
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET",
                                f"/run/psc-idp/gunicorn-{bind.rsplit(':', 1)[-1]}.ctl")
accesslog = "-"
errorlog = "-"


def post_fork(server, worker):
    # Each worker loads its own CRL copy and starts its own background refresher.
    from psc_idp.wsgi import app

    crls = app.extensions["psc_idp"].cards.crls
    crls.start()
