"""proxy/gunicorn_conf.py: the EPROX_* variables it reads are checked and named, and a worker's exit never
builds a proxy."""
from __future__ import annotations

import importlib
import sys

import pytest

import proxy.gunicorn_conf as conf


@pytest.fixture
def reload(monkeypatch):
    def load(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(conf)
    yield load
    monkeypatch.undo()
    importlib.reload(conf)


@pytest.mark.parametrize("name, value, expected", [
    ("EPROX_WORKERS", "abc", "a whole number of at least 1"), ("EPROX_WORKERS", "0", "a whole number of at least 1"),
    ("EPROX_THREADS", "-2", "a whole number of at least 1"), ("EPROX_ACCESS_LOG", "yes", "1 (on) or 0 (off)")])
def test_a_variable_gunicorn_cannot_use_is_named(reload, capsys, name, value, expected):
    """Before, EPROX_WORKERS=abc was gunicorn's traceback naming no variable, 0 a master with no worker, and an
    access log switch other than 1 silently off."""
    with pytest.raises(SystemExit) as caught:
        reload(**{name: value})
    assert caught.value.code == 2
    assert capsys.readouterr().err == f"proxy: {name}: must be {expected} (it is {value!r})\n"
    loaded = reload(EPROX_WORKERS="3", EPROX_THREADS=" 4 ", EPROX_ACCESS_LOG="1")
    assert (loaded.workers, loaded.threads, loaded.accesslog) == (3, 4, "-")


def test_a_worker_exiting_builds_no_proxy(monkeypatch):
    """Before, worker_exit imported proxy.wsgi, which builds the proxy: in a worker whose proxy had failed to
    build, a second attempt (and a second traceback) while it exited."""
    monkeypatch.delitem(sys.modules, "proxy.wsgi", raising=False)
    monkeypatch.setenv("EPROX_CONFIG", "/nonexistent/eprox.yaml")
    conf.worker_exit(None, None)
    assert "proxy.wsgi" not in sys.modules
