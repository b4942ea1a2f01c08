"""One harness: fake ePROM, ePROX and the configured fake registries, each on its own loopback port in
this process, sharing one simulated clock and one timeline, every message they send in one transcript."""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask

from service_kit.clock import SimClock
from service_kit.runtime import Runtime
from service_kit.server import LiveServer
from service_kit.timeline import Timeline

from .config import EPROX_AT_EPROM, HarnessConfig
from .transcript import Transcript

log = logging.getLogger(__name__)

EPROM = "eprom"
PROXY = "proxy"
SERVE_CHECK_TIMEOUT = 5.0
RUNS_FILE = "harness-runs.json"  # in a kept stateDir: how many runs used it, when the last one stopped


def _external_names(registries) -> dict[str, str]:
    """Transcript names for registries with a callbackUrl: scheme://host:port -> name (names joined with
    '|' when several registries share one host and port)."""
    names: dict[str, list[str]] = {}
    for registry in registries:
        if registry.callback_url is not None:
            parts = urlsplit(registry.callback_url)
            names.setdefault(f"{parts.scheme}://{parts.netloc}", []).append(registry.name)
    return {base: "|".join(found) for base, found in names.items()}


class HarnessError(RuntimeError):
    """The harness could not be started."""


class Harness:
    """Use as a context manager, or call start() and stop().

    pump=True runs callbacks as soon as they fall due (what `eprox-harness up` wants); pump=False leaves
    all due work to /_sim/settle and /_sim/clock/advance, so a scripted run is the same every time."""

    def __init__(self, config: HarnessConfig | None = None, *, pump: bool = True, host: str = "127.0.0.1"):
        self.config = config or HarnessConfig()
        self.pump = pump
        self.host = host
        self.servers: dict[str, LiveServer] = {}
        self.apps: dict[str, Flask] = {}
        self._proxy_closed = False
        self.forms: list[dict] = []
        self.transcript = Transcript()
        self.clock: SimClock | None = None
        self.timeline: Timeline | None = None
        self.state_dir: Path | None = None
        self._owns_state_dir = False
        self._running = False

    # --- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> "Harness":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> "Harness":
        if self._running:
            return self
        try:
            self._bind()
            self._build()
            self._serve()
        except BaseException:
            self.stop()
            raise
        self._running = True
        return self

    def stop(self) -> None:
        """Stop the pump, then the servers, then remove a temporary state directory. Safe to call twice."""
        self._running = False
        if self.timeline is not None:
            self.timeline.stop()
        for name, server in reversed(list(self.servers.items())):
            try:
                server.stop()
            except Exception:  # keep stopping the others
                log.exception("stopping server %s failed", name)
        self.servers.clear()
        self._close_proxy()
        if self.config.state_dir is not None and self.state_dir is not None and self.clock is not None:
            self._write_kept_runs({**self._kept_runs(), "stoppedAt": self.clock.now().isoformat()})
        if self._owns_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self._owns_state_dir = False

    def _close_proxy(self) -> None:
        """End the proxy's deliveries in flight (a slow registry held `up`'s exit for the proxy's whole delivery
        timeout; they are failed attempts, sent again when a kept state folder starts again) and close its
        database before its state may be deleted: a delivery still running wrote into a deleted folder."""
        app = self.apps.get(PROXY)
        if app is None or self._proxy_closed:
            return
        self._proxy_closed = True
        from proxy.app import EXTENSION
        service = app.extensions[EXTENSION]
        try:
            service.close(cut_calls=True)
            service.store.close()
        except Exception:  # keep stopping
            log.exception("closing the proxy failed")

    # --- what the world sees ------------------------------------------------------------
    def url(self, name: str) -> str:
        """A server's base URL; for a registry with a callbackUrl, that URL (the harness runs nothing there)."""
        for registry in self.config.registries:
            if registry.name == name and registry.callback_url is not None:
                return registry.callback_url
        return self.servers[name].url

    @property
    def registry_names(self) -> list[str]:
        return [r.name for r in self.config.registries]

    @property
    def fake_registry_names(self) -> list[str]:
        """The registries the harness runs itself (those without a callbackUrl)."""
        return [r.name for r in self.config.registries if r.is_fake]

    def info(self) -> dict:
        """The ready file's content (SPEC §4)."""
        return {
            "eprom": {"url": self.url(EPROM), "apiKey": self.config.eprom_api_key},
            "proxy": {"url": self.url(PROXY)},
            "registries": [{"name": r.name, "url": self.url(r.name), "apiKey": r.api_key}
                           for r in self.config.registries],
            "forms": [dict(form) for form in self.forms],
        }

    # --- building -----------------------------------------------------------------------
    def _bind(self) -> None:
        """Every port first, so every server's URL is known before any app is built."""
        for name in [EPROM, PROXY, *self.fake_registry_names]:
            self.servers[name] = LiveServer(name, host=self.host)

    def _build(self) -> None:
        # Imported here, not at module level: the harness's other parts work without the services.
        from fake_eprom.app import create_app as create_eprom
        from fake_eprom.config import EpromConfig, OrderingSystem
        from fake_eprom.forms import default_catalog, parse_catalog
        from fake_registry.app import create_app as create_registry
        from fake_registry.config import RegistryConfig
        from proxy.app import create_app as create_proxy
        from proxy.config import ProxyConfig, RegistryAccount

        cfg = self.config
        eprom_url, proxy_url = self.url(EPROM), self.url(PROXY)
        forms = default_catalog() + (parse_catalog({"forms": cfg.forms}, source="forms") if cfg.forms else [])
        self.forms = [form.summary() for form in forms]
        self.transcript.names.update(_external_names(cfg.registries))
        self.transcript.names.update({server.url: name for name, server in self.servers.items()})
        self.transcript.form_names.update({f["id"]: f["name"] for f in self.forms})
        if cfg.state_dir is None:
            self.state_dir, self._owns_state_dir = Path(tempfile.mkdtemp(prefix="eprox-harness-")), True
        else:
            self.state_dir = cfg.state_dir
        self._seed, resume_at = self._begin_run()
        self.clock = SimClock(max(cfg.start, resume_at) if resume_at else cfg.start)
        self.timeline = Timeline(self.clock, pump=self.pump)

        # Creation order is registration order on the timeline, which breaks ties: keep it fixed.
        self.apps[EPROM] = create_eprom(EpromConfig(
            ordering_systems=[OrderingSystem(name=EPROX_AT_EPROM, api_key=cfg.eprom_api_key,
                                             api_base_url=proxy_url, research=cfg.research,
                                             channel_format=cfg.channel_format)],
            forms=forms, population=cfg.population, status_delay=cfg.status_delay,
        ), self._runtime(EPROM))
        self.apps[PROXY] = create_proxy(ProxyConfig(
            eprom_url=eprom_url, eprom_api_key=cfg.eprom_api_key,
            registries=[RegistryAccount(name=r.name, api_key=r.api_key, api_base_url=self.url(r.name),
                                        allowed_forms=r.allowed_forms) for r in cfg.registries],
            state_dir=self.state_dir, lifetime=cfg.lifetime,
        ), self._runtime(PROXY))
        for registry in cfg.registries:
            if not registry.is_fake:
                continue  # the proxy calls the registry's own system back; nothing runs here for it
            self.apps[registry.name] = create_registry(
                RegistryConfig(name=registry.name, api_key=registry.api_key, target_url=proxy_url),
                self._runtime(registry.name))

    def _begin_run(self) -> tuple[int | str, datetime | None]:
        """This run's seed, and the simulated time to resume at. A kept stateDir outlives the simulators: the
        proxy still holds the ePROM ids and the times of earlier runs. So a fake ePROM started afresh must
        not hand those ids out again (the proxy would refuse them), and the clock must not go back before
        what the proxy has stored (retries and lifetimes would wait for time to come round again). Runs on a
        kept state dir are counted in RUNS_FILE, with the simulated time each run stopped at: runs after the
        first get seeds of their own (the first keeps the configured seed, as a temporary state dir always
        does), and the clock goes on from where the last run stopped, or from `start` if that is later."""
        if self._owns_state_dir or self.state_dir is None:
            return self.config.seed, None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        kept = self._kept_runs()
        run = int(kept.get("runs", 0)) + 1
        stopped_at = datetime.fromisoformat(kept["stoppedAt"]) if kept.get("stoppedAt") else None
        self._write_kept_runs({**kept, "runs": run})
        return (self.config.seed if run == 1 else f"{self.config.seed}/run-{run}"), stopped_at

    def _kept_runs(self) -> dict:
        try:
            kept = json.loads((self.state_dir / RUNS_FILE).read_text())
            return kept if isinstance(kept, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_kept_runs(self, kept: dict) -> None:
        (self.state_dir / RUNS_FILE).write_text(json.dumps(kept) + "\n")

    def _runtime(self, name: str) -> Runtime:
        """Each server gets its own Runtime over the shared clock and timeline, so the transcript knows
        which server sent what whatever name the service gives its transport."""
        assert self.clock is not None and self.timeline is not None
        return Runtime(self.clock, self.timeline, seed=self._seed,
                       tap=self.transcript.tap_for(name), sim=True)

    def _serve(self) -> None:
        for name, server in self.servers.items():
            server.mount(self.apps[name])
        for server in self.servers.values():
            server.start()
        assert self.timeline is not None
        self.timeline.start()
        self._check_serving()

    def _check_serving(self) -> None:
        """Each server answers its clock: what `up` promises before it writes the ready file."""
        with requests.Session() as session:
            for name, server in self.servers.items():
                try:
                    reply = session.get(f"{server.url}/_sim/clock", timeout=SERVE_CHECK_TIMEOUT)
                except requests.RequestException as err:
                    raise HarnessError(f"{name} at {server.url} does not answer: {err}") from None
                if reply.status_code != 200:
                    raise HarnessError(f"{name} at {server.url} answered /_sim/clock with HTTP {reply.status_code}")
