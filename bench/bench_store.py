"""Order latency with few versus many stored orders (10^3 vs 10^6 by default).

For each size: bulk-load a fresh database (bench/loader.py, through proxy/store.py's schema), start the
proxy on it (werkzeug unless told otherwise), then measure one connection at a time (pure latency, no
queueing): LINK orders from reg-01 to the pre-loaded targets of reg-00, and NEW orders for fresh patients
through the fake ePROM. Then the proxy stops and the database is deleted."""
from __future__ import annotations

import shutil
from dataclasses import dataclass

from . import loader
from .common import http_request, national_ids, order_body, percentile, registry_key
from .loadgen import LoadResult, closed_loop
from .world import World

ORDER_PATH = "/api/v2/formorder"


@dataclass
class StoreRun:
    stored: int
    load: dict
    link: LoadResult
    new: LoadResult
    concurrency: int

    @staticmethod
    def stats(result: LoadResult) -> dict[str, float]:
        lat = result.latencies
        return {"p50": percentile(lat, 50) * 1000, "p99": percentile(lat, 99) * 1000,
                "mean": sum(lat) / len(lat) * 1000 if lat else float("nan"), "rps": result.rps}


def run(world: World, sizes: list[int], count: int, warmup: int, server: str = "werkzeug", concurrency: int = 1,
        log=print) -> list[StoreRun]:
    runs: list[StoreRun] = []
    for n, size in enumerate(sizes):
        state_dir = world.workdir / f"store-{size}"
        state_dir.mkdir()
        try:
            targets = national_ids(warmup + count, start=3_000_000)
            fresh = national_ids(warmup + count, start=4_000_000 + n * 10_000)

            def progress(done: int, total: int) -> None:
                if done % 200_000 == 0:
                    log(f"    loaded {done:,} of {total:,}")

            info = loader.load(state_dir / "eprox.sqlite3", size, targets, progress=progress)
            log(f"  stored {size:,} orders ({sum(info['rows'].values()):,} rows, {info['bytes'] / 1e6:,.0f} MB) "
                f"in {info['seconds']:.0f} s")
            proxy = world.start_proxy(server, state_dir)
            try:
                base = world.received_total()
                link = [http_request("POST", ORDER_PATH, order_body(p), port=proxy.port, api_key=registry_key(1))
                        for p in targets]
                new = [http_request("POST", ORDER_PATH, order_body(p), port=proxy.port, api_key=registry_key(2))
                       for p in fresh]
                closed_loop(proxy.port, link[:warmup], concurrency)
                closed_loop(proxy.port, new[:warmup], concurrency)
                world.wait_total(base + 2 * warmup, timeout=60)
                link_result = closed_loop(proxy.port, link[warmup:], concurrency)
                world.wait_total(base + 2 * warmup + count, timeout=60)
                new_result = closed_loop(proxy.port, new[warmup:], concurrency)
                world.wait_total(base + 2 * (warmup + count), timeout=60)
            finally:
                world.stop(proxy)
            run = StoreRun(size, info, link_result, new_result, concurrency)
            runs.append(run)
            bad = [r.errors[:2] for r in (link_result, new_result) if r.errors]
            log(f"  {size:>9,} stored: link p50 {run.stats(link_result)['p50']:.1f} ms, "
                f"new p50 {run.stats(new_result)['p50']:.1f} ms {bad if bad else ''}")
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
    return runs
