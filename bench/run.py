"""Run the proxy benchmarks and print a table of figures beside the targets of issue 4 item 9.

    python -m bench                 quick run (a couple of minutes)
    python -m bench --full          the full run (10^6 stored orders; about 15 minutes on 2 cores)
    python bench/run.py --help      the same, every option

Everything runs on 127.0.0.1; every server is a child process of this one and stops with it."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import bench_fanout, bench_orders, bench_store  # noqa: E402
from bench.common import REPO, percentile  # noqa: E402
from bench.world import (  # noqa: E402
    GUNICORN_THREADS, GUNICORN_WORKERS, SERVERS, World, default_eprom_server, parse_eprom_server, parse_server)

TARGET_LINK_RATIO = 0.5
TARGET_P99_MS = 50.0
TARGET_P99_CONCURRENCY = 16
TARGET_FANOUT_MS = 250.0
TARGET_STORE_RATIO = 1.25

PROFILES = {
    "quick": dict(count=400, warmup=100, rounds=1, fanout=5, fanout_warmup=1, store_sizes=[1_000, 100_000],
                  store_count=200, store_warmup=50),
    "full": dict(count=1500, warmup=200, rounds=3, fanout=30, fanout_warmup=3, store_sizes=[1_000, 1_000_000],
                 store_count=800, store_warmup=100),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the full run: more orders, 30 fan-outs, 10^6 stored orders")
    ap.add_argument("--only", default="orders,fanout,store", help="which benchmarks (default: all three)")
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="WSGI servers for the proxy and the bare handler: werkzeug, gunicorn (1 worker, 16 threads) "
                         "or gunicorn:WxT (W workers of T threads); default werkzeug,gunicorn")
    ap.add_argument("--concurrency", default="4,16", help="concurrent connections for the order benchmarks")
    ap.add_argument("--count", type=int, help="counted orders per phase")
    ap.add_argument("--warmup", type=int, help="warm-up orders per phase (not counted)")
    ap.add_argument("--rounds", type=int, help="rounds of bare/new/link per server and concurrency")
    ap.add_argument("--fanout-runs", type=int, help="counted fan-outs per server")
    ap.add_argument("--registries", type=int, default=20, help="linked registries in the fan-out")
    ap.add_argument("--store-sizes", help="stored orders to compare, e.g. 1000,1000000")
    ap.add_argument("--store-count", type=int, help="counted orders per kind and size")
    ap.add_argument("--eprom-server", default=None,
                    help="the fake ePROM's server: werkzeug or gunicorn:1xT (default gunicorn:1x16 when gunicorn is "
                         "installed, else werkzeug)")
    ap.add_argument("--store-server", default="werkzeug", help="the server for the stored-orders benchmark")
    ap.add_argument("--store-concurrency", type=int, default=1)
    ap.add_argument("--pin", action="store_true",
                    help="server under test alone on CPU 1; load generator, fake ePROM and receivers on CPU 0")
    ap.add_argument("--workdir", help="where databases and logs go (default: a new temporary folder, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to this long for the machine's 1-minute load average to fall below 0.5")
    args = ap.parse_args(argv)
    args.eprom_server = args.eprom_server or default_eprom_server()
    try:
        parse_eprom_server(args.eprom_server)
    except ValueError as err:
        ap.error(str(err))
    profile = PROFILES["full" if args.full else "quick"]
    args.profile = "full" if args.full else "quick"
    args.count = args.count or profile["count"]
    args.warmup = profile["warmup"] if args.warmup is None else args.warmup
    args.rounds = args.rounds or profile["rounds"]
    args.fanout_runs = args.fanout_runs or profile["fanout"]
    args.fanout_warmup = profile["fanout_warmup"]
    args.store_sizes = [int(s) for s in args.store_sizes.split(",")] if args.store_sizes else profile["store_sizes"]
    args.store_count = args.store_count or profile["store_count"]
    args.store_warmup = profile["store_warmup"]
    if args.store_count + args.store_warmup > min(args.store_sizes):
        ap.error(f"--store-count {args.store_count} plus {args.store_warmup} warm-up orders need that many stored "
                 f"orders to link to: more than the smallest size {min(args.store_sizes)}")
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    for spec in [*args.servers, args.store_server]:
        try:
            parse_server(spec)
        except ValueError as err:
            ap.error(str(err))
    if unknown := args.only - {"orders", "fanout", "store"}:
        ap.error(f"unknown benchmark(s) {unknown}")
    return args


def environment(eprom_server: str) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    def git(*cmd: str) -> str:  # read-only
        try:
            return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "?"
    dirty = git("status", "--porcelain", "--", "proxy")
    return [
        f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"servers: werkzeug {ver('werkzeug')} threaded (thread per connection, as the harness), "
        f"gunicorn {ver('gunicorn')} -k gthread (default -w {GUNICORN_WORKERS} --threads {GUNICORN_THREADS}); "
        f"Flask {ver('flask')}; the fake ePROM under {eprom_server}",
        f"proxy/ at commit {git('rev-parse', '--short', 'HEAD')}"
        + (" with uncommitted changes in proxy/" if dirty else ""),
    ]


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(args, orders, fanout, store) -> tuple[list[str], list[dict]]:
    lines: list[str] = []
    targets: list[dict] = []
    if orders:
        lines += ["", f"1. Orders: closed loop over {'/'.join(map(str, args.concurrency))} connections, "
                      f"{args.rounds} round(s) of {args.count} counted orders after {args.warmup} warm-up per row; "
                      f"servers and load generator in separate processes"
                      + (" (pinned: server under test alone on CPU 1)" if args.pin else ""), ""]
        head = (f"{'server':12} {'conn':>4} {'kind':5} {'orders/s':>9} {'(min-max)':>11} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'proxy/bare':>10} {'srv CPU ms':>10} {'loadgen':>7} {'drain s':>7} {'+cb/s':>6}")
        lines += [head, "-" * len(head)]
        bare = {(p.server, p.concurrency): p for p in orders if p.kind == "bare"}
        for p in orders:
            ratio = "" if p.kind == "bare" else f"{p.rps / bare[(p.server, p.concurrency)].rps:.2f}x"
            drain = "" if p.kind == "bare" else ("timeout" if p.drain_s is None else f"{p.drain_s:.2f}")
            sustained = "" if p.with_callbacks_rps is None else f"{p.with_callbacks_rps:.0f}"
            low, high = p.rps_spread
            lines.append(f"{p.server:12} {p.concurrency:>4} {p.kind:5} {p.rps:>9.0f} {f'{low:.0f}-{high:.0f}':>11} "
                         f"{p.p50_ms:>7.1f} {p.p99_ms:>7.1f} {ratio:>10} {p.server_cpu_ms_per_order:>10.2f} "
                         f"{p.loadgen_share * 100:>6.1f}% {drain:>7} {sustained:>6}")
            notes = list(p.notes) + p.errors[:3]
            if p.foreign_share > 0.05:
                notes.append(f"other processes used {p.foreign_share * 100:.0f}% of the machine meanwhile: "
                             f"figures disturbed")
            if p.duplicates:
                notes.append(f"{p.duplicates} callback(s) delivered twice to a registry (same X-Delivery-Id)")
            lines += [f"    ! {note}" for note in notes]
        lines += ["", "   orders/s: median of the rounds (min-max beside it); srv CPU ms: CPU time of the server "
                      "process(es) per counted order (the proxy's includes its outbox deliveries); loadgen: the load "
                      "generator's share of the CPU all benchmark processes used; drain: after the last counted "
                      "order, until every callback the orders caused had been acknowledged (worst round); +cb/s: counted "
                      "orders per second until their callbacks had been acknowledged too (median of the rounds), "
                      "the rate a burst can be sustained at with the outbox's work."]
        for p in orders:
            if p.kind == "link":
                r = p.rps / bare[(p.server, p.concurrency)].rps
                targets.append(dict(target=f"linking >= {TARGET_LINK_RATIO}x bare throughput ({p.server}, "
                                           f"{p.concurrency} conn)", measured=f"{r:.2f}x", met=r >= TARGET_LINK_RATIO))
        for p in orders:
            if p.kind in ("link", "new") and p.concurrency == TARGET_P99_CONCURRENCY:
                targets.append(dict(target=f"p99 <= {TARGET_P99_MS:.0f} ms at {p.concurrency} conn ({p.server}, {p.kind})",
                                    measured=f"{p.p99_ms:.1f} ms", met=p.p99_ms <= TARGET_P99_MS))
    if fanout:
        lines += ["", f"2. One Completed callback to {args.registries} linked registries: from the PUT to the proxy "
                      f"until the last registry acknowledged ({args.fanout_runs} runs per server)", ""]
        head = (f"{'server':12} {'runs':>4} {'intake p50':>10} {'first p50':>9} {'all p50':>8} {'all p90':>8} "
                f"{'all max':>8}  (ms)")
        lines += [head, "-" * len(head)]
        for server, runs in fanout.items():
            alls = [r.all_ms for r in runs]
            lines.append(f"{server:12} {len(runs):>4} {percentile([r.intake_ms for r in runs], 50):>10.1f} "
                         f"{percentile([r.first_ms for r in runs], 50):>9.1f} {percentile(alls, 50):>8.1f} "
                         f"{percentile(alls, 90):>8.1f} {max(alls):>8.1f}")
            short = [r for r in runs if r.acked < args.registries]
            if short:
                lines.append(f"    ! {len(short)} run(s) did not reach every registry within 30 s")
            targets.append(dict(target=f"fan-out to {args.registries} registries <= {TARGET_FANOUT_MS:.0f} ms "
                                       f"({server}, max of {len(runs)})",
                                measured=f"p50 {percentile(alls, 50):.0f} ms, max {max(alls):.0f} ms",
                                met=max(alls) <= TARGET_FANOUT_MS and not short))
    if store:
        lines += ["", f"3. Order latency by stored orders ({args.store_server}, {args.store_concurrency} connection, "
                      f"{args.store_count} counted orders per kind after {args.store_warmup} warm-up)", ""]
        head = (f"{'stored':>10} {'rows':>10} {'MB':>6} {'load s':>6}   {'link p50':>8} {'p99':>6} {'mean':>6}   "
                f"{'new p50':>7} {'p99':>6} {'mean':>6}  (ms)")
        lines += [head, "-" * len(head)]
        for r in store:
            link, new = r.stats(r.link), r.stats(r.new)
            lines.append(f"{r.stored:>10,} {sum(r.load['rows'].values()):>10,} {r.load['bytes'] / 1e6:>6,.0f} "
                         f"{r.load['seconds']:>6.0f}   {link['p50']:>8.2f} {link['p99']:>6.1f} {link['mean']:>6.2f}   "
                         f"{new['p50']:>7.2f} {new['p99']:>6.1f} {new['mean']:>6.2f}")
            for res in (r.link, r.new):
                for e in res.errors[:3]:
                    lines.append(f"    ! {e}")
        if len(store) >= 2:
            small, big = store[0], store[-1]
            for kind in ("link", "new"):
                a, b = small.stats(getattr(small, kind)), big.stats(getattr(big, kind))
                ratio, mean_ratio = b["p50"] / a["p50"], b["mean"] / a["mean"]
                lines.append(f"   {kind}: {big.stored:,} vs {small.stored:,} stored: p50 {ratio:.2f}x, "
                             f"mean {mean_ratio:.2f}x, p99 {b['p99'] / a['p99']:.2f}x")
                label = "" if big.stored >= 1_000_000 else " (quick run: not the target's 10^6)"
                targets.append(dict(target=f"{kind} latency with {big.stored:,} stored <= {TARGET_STORE_RATIO}x "
                                           f"that with {small.stored:,}{label}",
                                    measured=f"p50 {ratio:.2f}x (mean {mean_ratio:.2f}x)",
                                    met=ratio <= TARGET_STORE_RATIO))
    if targets:
        lines += ["", "Targets (issue 4 item 9, 2-core machine)", ""]
        width = max(len(t["target"]) for t in targets)
        lines += [f"{'target':{width}}  {'measured':28} result", "-" * (width + 38)]
        lines += [f"{t['target']:{width}}  {t['measured']:28} {_met(t['met'])}" for t in targets]
    return lines, targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop our servers
    env_lines = environment(args.eprom_server)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="eprox-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"eprox benchmarks ({args.profile} run), work folder {workdir}", flush=True)
    for line in env_lines:
        print("  " + line)
    deadline = time.monotonic() + args.wait_quiet
    while os.getloadavg()[0] > 0.5 and time.monotonic() < deadline:
        time.sleep(5)
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        print(f"  WARNING: load average {load1:.1f} before the run: something else is using the CPU, "
              f"and the figures will show it")
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    orders = fanout = store = None
    world = World(workdir, registries=max(args.registries, 3), pin=args.pin, eprom_server=args.eprom_server)
    started = time.monotonic()
    failures: list[str] = []

    def attempt(name: str, fn):
        try:
            return fn()
        except Exception as err:  # report what did run; say what did not
            import traceback
            traceback.print_exc()
            failures.append(f"{name}: {type(err).__name__}: {err}")
            return None

    counts = {"total": 0, "unique": 0, "duplicates": 0}
    try:
        world.start_common()
        if "orders" in args.only:
            log("orders ...")
            orders = attempt("orders", lambda: bench_orders.run(
                world, args.servers, args.concurrency, args.count, args.warmup, rounds=args.rounds, log=log))
        if "fanout" in args.only:
            log("fan-out ...")
            fanout = attempt("fan-out", lambda: bench_fanout.run(
                world, args.servers, args.fanout_runs, args.fanout_warmup, registries=args.registries, log=log))
        if "store" in args.only:
            log("stored orders ...")
            store = attempt("stored orders", lambda: bench_store.run(
                world, args.store_sizes, args.store_count, args.store_warmup, server=args.store_server,
                concurrency=args.store_concurrency, log=log))
        counts = world.counts()
    finally:
        world.stop_all()
        if not args.keep and not args.workdir and not failures:  # after a failure its servers' logs say why
            shutil.rmtree(workdir, ignore_errors=True)
    lines, targets = report(args, orders, fanout, store)
    print("\n".join(lines))
    for failure in failures:
        print(f"\nFAILED {failure}")
    if failures:
        print(f"the servers' logs are kept in {workdir}")
    print(f"\nregistries acknowledged {counts['total']} callbacks in all ({counts['unique']} distinct), "
          f"{counts['duplicates']} with an X-Delivery-Id already acknowledged; took {time.monotonic() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "profile": args.profile, "environment": environment(args.eprom_server), "targets": targets,
            "orders": [dict(server=p.server, concurrency=p.concurrency, kind=p.kind, rps=p.rps,
                            rounds_rps=[r.rps for r in p.rounds], p50_ms=p.p50_ms, p99_ms=p.p99_ms, cpu=p.cpu,
                            drains_s=p.drains, with_callbacks_rps=p.with_callbacks_rps, duplicates=p.duplicates,
                            notes=p.notes)
                       for p in orders or []],
            "fanout": {s: [vars(r) for r in runs] for s, runs in (fanout or {}).items()},
            "store": [dict(stored=r.stored, load=r.load, link=r.stats(r.link), new=r.stats(r.new)) for r in store or []],
        }, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
