"""gunicorn settings for the proxy: `gunicorn -c python:proxy.gunicorn_conf proxy.wsgi:app`.

Every setting can be changed on the command line or through EPROX_BIND, EPROX_WORKERS, EPROX_THREADS and
EPROX_ACCESS_LOG. Several workers may share one database: orders for one patient and form are decided
one at a time across workers, and each delivery is leased by one worker (docs/PROXY.md)."""
import os

bind = os.environ.get("EPROX_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("EPROX_WORKERS", "2"))
worker_class = "gthread"  # threads: an order waiting for ePROM must not block the worker's other requests
threads = int(os.environ.get("EPROX_THREADS", "8"))
preload_app = False  # each worker builds its own app after the fork: threads and SQLite handles do not fork
timeout = 60
graceful_timeout = 30
accesslog = "-" if os.environ.get("EPROX_ACCESS_LOG") == "1" else None  # paths carry no national ids
# gunicorn >= 25 opens a control socket in $HOME by default, shared by every gunicorn of the user: only
# where the operator asks for one (ignored by older gunicorns, which have no such setting)
control_socket = os.environ.get("EPROX_CONTROL_SOCKET") or None
control_socket_disable = control_socket is None


def post_worker_init(worker):
    from proxy.wsgi import app
    app.start()  # already started by the import; makes sure, should the app be loaded another way


def worker_exit(server, worker):
    from proxy.wsgi import app
    app.close()
