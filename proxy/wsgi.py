"""The WSGI entry for production servers: `gunicorn -c python:proxy.gunicorn_conf proxy.wsgi:app`.

Importing this module builds the proxy from the environment (EPROX_CONFIG, EPROX_DATABASE, ...; see
docs/PROXY.md) and starts its delivery pump in the importing process: the one module that does work at
import time, because that is what a WSGI entry is for. Each gunicorn worker imports it after the fork,
so each worker has its own pump, its own database connections and its own liveness token."""
from __future__ import annotations

from .production import WsgiEntry
from .settings import load_settings

app = WsgiEntry(load_settings)
application = app  # the name some WSGI servers look for
app.start()
