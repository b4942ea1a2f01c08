"""gunicorn settings for the proxy: `gunicorn -c python:proxy.gunicorn_conf proxy.wsgi:app`.

Every setting can be changed on the command line or through EPROX_BIND, EPROX_WORKERS, EPROX_THREADS and
EPROX_ACCESS_LOG. Several workers may share one database: orders for one patient and form are decided
one at a time across workers, and each delivery is leased by one worker (docs/PROXY.md).

A problem with these variables or with the proxy's configuration stops gunicorn before it forks a worker,
with one message naming it (exit 2): else every worker would print a traceback as it failed to boot."""
import os
import sys


def _refuse(message: str, server=None) -> None:
    print(f"proxy: {message}", file=sys.stderr, flush=True)
    if server is not None and server.pidfile is not None:
        server.pidfile.unlink()
    raise SystemExit(2)  # gunicorn lets SystemExit through; any other exception it prints with a traceback


def _count(name: str, default: int) -> int:
    """A positive whole number from the environment (gunicorn's own message would not name the variable, and
    0 workers is a master that serves nothing)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        _refuse(f"{name}: must be a whole number of at least 1 (it is {text!r})")
    return value


def _switch(name: str) -> bool:
    text = os.environ.get(name, "").strip()
    if text not in ("", "0", "1"):
        _refuse(f"{name}: must be 1 (on) or 0 (off) (it is {text!r})")
    return text == "1"


bind = os.environ.get("EPROX_BIND", "127.0.0.1:8000")
workers = _count("EPROX_WORKERS", 2)
worker_class = "gthread"  # threads: an order waiting for ePROM must not block the worker's other requests
threads = _count("EPROX_THREADS", 8)
preload_app = False  # each worker builds its own app after the fork: threads and SQLite handles do not fork
timeout = 60
graceful_timeout = 30
# paths and query strings may carry national ids (a registry chooses what it sends): on_starting masks them
accesslog = "-" if _switch("EPROX_ACCESS_LOG") else None
# gunicorn >= 25 opens a control socket in $HOME by default, shared by every gunicorn of the user: only
# where the operator asks for one (ignored by older gunicorns, which have no such setting)
control_socket = os.environ.get("EPROX_CONTROL_SOCKET") or None
control_socket_disable = control_socket is None


def on_starting(server):
    """In the master, before any worker: the proxy's configuration checked as `check-config` checks it, and
    gunicorn's own logs (access and error) masking national ids as the proxy's log handlers do. The workers
    inherit the loggers at the fork."""
    from proxy.cli import UsageError, usable_config
    from proxy.production import redact_logger
    try:
        usable_config(None)
    except UsageError as err:
        _refuse(str(err), server)
    for name in ("gunicorn.access", "gunicorn.error"):
        redact_logger(name)


def post_worker_init(worker):
    from proxy.wsgi import app
    app.start()  # already started by the import; makes sure, should the app be loaded another way


def worker_exit(server, worker):
    """Closes this worker's proxy, if it built one; importing proxy.wsgi here would build one, in a worker
    whose proxy failed to build a second time as it exits."""
    wsgi = sys.modules.get("proxy.wsgi")
    if wsgi is not None:
        wsgi.app.close()
