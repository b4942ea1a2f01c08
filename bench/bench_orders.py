"""Orders per second and latency at several concurrencies: (b) orders that create a NEW ePROM order through
the fake ePROM, (a) orders that LINK to an order another registry made, and the bare Flask + SQLite insert
handler beside them, under the same WSGI server with the same threads, in the same run.

Per server and concurrency C, in this order:
  bare   W+N orders to the bare handler;
  new    W+N orders from registry reg-00 for W+N fresh patients (each a new ePROM order, rule 2), then wait
         until every Ordered status callback has gone fake ePROM -> proxy -> reg-00 (the drain);
  link   W+N orders from registry reg-01 for the same patients: each links to reg-00's order (rule 3) and gets
         the Ordered status replayed; wait for those W+N deliveries too.
The first W orders of each phase warm up and are not counted. This repeats for R rounds (fresh patients each
time); orders/s is the median of the rounds' closed-loop rates, p50/p99 are over all counted orders of all
rounds, as the load generator saw them (send to last byte)."""
from __future__ import annotations

import os
import shutil
import statistics
import time
from dataclasses import dataclass, field

from .common import call_json, machine_busy, http_request, national_ids, order_body, percentile, registry_key
from .loadgen import LoadResult, closed_loop
from .world import World

ORDER_PATH = "/api/v2/formorder"


@dataclass
class Phase:
    server: str
    concurrency: int
    kind: str  # bare | new | link
    rounds: list[LoadResult] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process during the counted orders
    drains: list[float | None] = field(default_factory=list)  # per round: after its counted orders, until
    # every callback they caused was acknowledged
    duplicates: int = 0  # callbacks a registry got twice (same X-Delivery-Id) during this kind's rounds
    notes: list[str] = field(default_factory=list)

    def add(self, result: LoadResult, cpu: dict[str, float]) -> None:
        self.rounds.append(result)
        for k, v in cpu.items():
            self.cpu[k] = self.cpu.get(k, 0.0) + v

    @property
    def latencies(self) -> list[float]:
        return [x for r in self.rounds for x in r.latencies]

    @property
    def completed(self) -> int:
        return sum(r.completed for r in self.rounds)

    @property
    def rps(self) -> float:
        """Median over rounds of each round's orders per second."""
        return statistics.median(r.rps for r in self.rounds)

    @property
    def rps_spread(self) -> tuple[float, float]:
        return min(r.rps for r in self.rounds), max(r.rps for r in self.rounds)

    @property
    def errors(self) -> list[str]:
        return [e for r in self.rounds for e in r.errors]

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    @property
    def drain_s(self) -> float | None:
        return None if any(d is None for d in self.drains) or not self.drains else max(self.drains)

    @property
    def with_callbacks_rps(self) -> float | None:
        """Median over rounds of counted orders per second until the callbacks they caused had all been
        acknowledged too (elapsed + drain): the rate a burst can be sustained at, the outbox's work included.
        Intake alone (rps) counts a callback still queued at the end as done."""
        if self.drain_s is None:  # a round whose callbacks never all came back: no such rate
            return None
        return statistics.median(r.completed / (r.elapsed + d) for r, d in zip(self.rounds, self.drains))

    @property
    def server_cpu_ms_per_order(self) -> float:
        return self.cpu.get("under test", 0.0) * 1000 / max(1, self.completed)

    @property
    def loadgen_share(self) -> float:
        ours = sum(v for k, v in self.cpu.items() if k != "other processes")
        return self.cpu.get("load generator", 0.0) / ours if ours else float("nan")

    @property
    def foreign_share(self) -> float:
        """CPU used by processes not ours while the counted orders ran, as a share of the machine (2 cores)."""
        wall = sum(r.elapsed for r in self.rounds)
        return self.cpu.get("other processes", 0.0) / (wall * (os.cpu_count() or 1)) if wall else 0.0


def _measure(world: World, under_test, port: int, requests: list[bytes], warmup: int,
             concurrency: int) -> tuple[LoadResult, dict[str, float]]:
    if warmup:
        closed_loop(port, requests[:warmup], concurrency)
    others = {"fake ePROM": world.eprom, "receivers": world.receivers}
    under_test.refresh_pids()
    machine = machine_busy()
    before = {"under test": under_test.cpu(), **{k: c.cpu() for k, c in others.items()}}
    result = closed_loop(port, requests[warmup:], concurrency)
    after = {"under test": under_test.cpu(), **{k: c.cpu() for k, c in others.items()}}
    machine = machine_busy() - machine
    cpu = {k: after[k] - before[k] for k in before}
    cpu["load generator"] = result.client_cpu
    cpu["other processes"] = max(0.0, machine - sum(cpu.values()))  # not ours: should be ~0 on a quiet machine
    return result, cpu


def _drain(world: World, expected_total: int, timeout: float = 120.0) -> float | None:
    started = time.monotonic()
    if not world.wait_total(expected_total, timeout=timeout):
        return None
    return time.monotonic() - started


def _eprom_orders(world: World) -> int:
    status, orders = call_json("GET", f"{world.eprom.url}/_sim/orders")
    return len(orders) if status == 200 and isinstance(orders, list) else -1


def run(world: World, servers: list[str], concurrencies: list[int], count: int, warmup: int, rounds: int = 1,
        log=print) -> list[Phase]:
    """Each (round, concurrency) block gets freshly started proxy and bare processes (on the same databases,
    which keep growing), so that a leak in one block cannot spoil the next; open files are watched."""
    phases: list[Phase] = []
    patient_cursor = 0
    for server in servers:
        state_dir = world.workdir / f"orders-{server.replace(':', '-')}"
        state_dir.mkdir()
        bare_db = world.workdir / f"bare-{server.replace(':', '-')}.sqlite3"
        mine = {(c, k): Phase(server, c, k) for c in concurrencies for k in ("bare", "new", "link")}
        proxy = bare = None
        try:
            for round_no in range(rounds):
                for concurrency in concurrencies:
                    proxy = world.start_proxy(server, state_dir)
                    bare = world.start_bare(server, bare_db)
                    total = warmup + count
                    patients = national_ids(total, start=patient_cursor)
                    patient_cursor += 2 * total
                    tag = f"  {server:12} round {round_no + 1}/{rounds} C={concurrency:<2}"

                    reqs = [http_request("POST", ORDER_PATH, order_body(p), port=bare.port) for p in patients]
                    phase = mine[(concurrency, "bare")]
                    phase.add(*_measure(world, bare, bare.port, reqs, warmup, concurrency))
                    log(f"{tag} bare {phase.rounds[-1].rps:7.0f}/s  {_errors(phase.rounds[-1])}")

                    for kind, registry in (("new", 0), ("link", 1)):
                        phase = mine[(concurrency, kind)]
                        base, dups = world.received_total(), world.counts()["duplicates"]
                        orders_before = _eprom_orders(world)
                        files_before = proxy.open_files()
                        reqs = [http_request("POST", ORDER_PATH, order_body(p), port=proxy.port,
                                             api_key=registry_key(registry)) for p in patients]
                        phase.add(*_measure(world, proxy, proxy.port, reqs, warmup, concurrency))
                        phase.drains.append(_drain(world, base + total))
                        phase.duplicates += world.counts()["duplicates"] - dups
                        grown = proxy.open_files() - files_before
                        if grown > max(200, total // 4):
                            phase.notes.append(f"round {round_no + 1}: the proxy's open files grew by {grown} "
                                               f"over {total} orders ({grown / total:.1f} per order): a leak")
                        made = _eprom_orders(world) - orders_before
                        expected = total if kind == "new" else 0
                        if made != expected:
                            phase.notes.append(f"round {round_no + 1}: expected {expected} new ePROM orders, "
                                               f"the fake ePROM got {made}")
                        log(f"{tag} {kind:4} {phase.rounds[-1].rps:7.0f}/s  drain {_s(phase.drains[-1])}  "
                            f"open files +{grown}  {_errors(phase.rounds[-1])}")
                    world.stop(proxy)
                    world.stop(bare)
        finally:
            for child in (proxy, bare):
                if child is not None:
                    world.stop(child)
            shutil.rmtree(state_dir, ignore_errors=True)
            for f in world.workdir.glob(bare_db.name + "*"):
                f.unlink()
        phases += [mine[(c, k)] for c in concurrencies for k in ("bare", "new", "link") if mine[(c, k)].rounds]
    return phases


def _s(value: float | None) -> str:
    return "timed out" if value is None else f"{value:.2f} s"


def _errors(result: LoadResult) -> str:
    bad = result.completed - result.statuses.get(200, 0)
    return f"({bad} not 200: {result.errors[:2]})" if bad or result.errors else ""
