"""Serve one app under the werkzeug threaded server the harness uses (service_kit.server.LiveServer), in
a process of its own: `python -m bench.serve KIND PORT CONFIG.json`. Stops on SIGTERM or SIGINT."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from service_kit.server import LiveServer

from .wsgi import build

MAX_SECONDS = 3600


def main(argv: list[str]) -> int:
    kind, port, config_path = argv[0], int(argv[1]), Path(argv[2])
    server = LiveServer(kind, port=port)
    server.mount(build(kind, json.loads(config_path.read_text())))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    parent = os.getppid()
    for _ in range(MAX_SECONDS):  # bounded: a server outlives neither its benchmark nor an hour
        if stop.wait(1.0) or os.getppid() != parent:
            break
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
