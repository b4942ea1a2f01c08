"""Where the proxy's (or, with --process eprom, the fake ePROM's) time goes under one benchmark load: py-spy
samples that process while the load generator drives the proxy, and this prints each function's share.

    python -m bench.profile --scenario link --server werkzeug --concurrency 16
    python -m bench.profile --scenario link --stored 100000 --concurrency 1
    python -m bench.profile --scenario callback          # Completed callbacks fanned out to 20 registries
    python -m bench.profile --scenario new --process eprom --gil    # the fake ePROM's share of new orders

Needs py-spy (`pip install py-spy`). Shares are of the samples of the proxy's non-idle threads (a thread
waiting for a lock, the GIL or a socket is idle), so they add up over threads, not to wall time; pass
--gil to count only the thread that holds the GIL (pure Python CPU; SQLite's C code then drops out).
Frames of proxy/, service_kit/, eprom_protocol/ and fake_eprom/ are listed by inclusive share; the leaf
table shows where the samples actually sit (SQLite calls appear as the Python line that called execute)."""
from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import loader  # noqa: E402
from bench.common import REPO, http_request, national_ids, order_body, percentile, registry_key  # noqa: E402
from bench.loadgen import closed_loop  # noqa: E402
from bench.world import World  # noqa: E402

PROJECT = ("proxy/", "service_kit/", "eprom_protocol/", "fake_eprom/")


def summarize(raw: Path, top: int = 30) -> list[str]:
    inclusive: Counter = Counter()
    leaf: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        seen = set()
        for frame in frames:
            name = _short(frame)
            if name and any(p in frame for p in PROJECT) and name not in seen:
                seen.add(name)
                inclusive[name] += n
        leaf[_short(frames[-1], keep_line=True) or frames[-1]] += n
    if not total:
        return ["no samples"]
    out = [f"{total} samples", "", "project functions, inclusive share of samples:"]
    out += [f"  {c / total * 100:5.1f}%  {name}" for name, c in inclusive.most_common(top)]
    out += ["", "where the samples sit (leaf frames):"]
    out += [f"  {c / total * 100:5.1f}%  {name}" for name, c in leaf.most_common(top)]
    return out


def _short(frame: str, keep_line: bool = False) -> str:
    """'place_order (/work/main/proxy/service.py:97)' -> 'proxy/service.py:place_order'."""
    func, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path, _, line = where.rpartition(":")
    for marker in ("site-packages/", "lib/python3", str(REPO) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    if not path:
        return func
    return f"{path}:{func}" + (f":{line}" if keep_line else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", choices=("link", "new", "callback"), default="link")
    ap.add_argument("--server", choices=("werkzeug", "gunicorn"), default="werkzeug")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--stored", type=int, default=0, help="bulk-load this many stored orders first")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--gil", action="store_true", help="only samples of the thread holding the GIL")
    ap.add_argument("--process", choices=("proxy", "eprom"), default="proxy",
                    help="which process to sample: the proxy, or the fake ePROM it calls (new orders)")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--out", help="keep py-spy's raw output here")
    args = ap.parse_args(argv)
    if shutil.which("py-spy") is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="eprox-profile-"))
    world = World(workdir)
    spy = None
    try:
        world.start_common()
        state = workdir / "state"
        state.mkdir()
        patients = national_ids(args.count, start=5_000_000)
        if args.stored:
            loader.load(state / "eprox.sqlite3", max(args.stored, args.count), patients)
        proxy = world.start_proxy(args.server, state)
        pid = (proxy if args.process == "proxy" else world.eprom).refresh_pids()[-1]  # gunicorn: the worker
        new = [http_request("POST", "/api/v2/formorder", order_body(p), port=proxy.port, api_key=registry_key(0))
               for p in patients]
        link = [http_request("POST", "/api/v2/formorder", order_body(p), port=proxy.port, api_key=registry_key(1))
                for p in patients]
        base = world.received_total()
        if args.scenario in ("link", "callback") and not args.stored:
            closed_loop(proxy.port, new, args.concurrency)  # the orders to link to
            world.wait_total(base + len(new), timeout=120)
        raw = Path(args.out) if args.out else workdir / "pyspy.txt"
        cmd = ["py-spy", "record", "--pid", str(pid), "-r", str(args.rate), "-f", "raw", "-o", str(raw), "--nonblocking"]
        if args.gil:
            cmd.append("--gil")
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        if args.scenario == "callback":
            from bench.bench_fanout import one
            started = time.monotonic()
            runs = [one(world, proxy.url, proxy.port, p, 20) for p in national_ids(40, start=6_000_000)]
            print(f"40 fan-outs to 20 registries: all-acked p50 {percentile([r.all_ms for r in runs], 50):.0f} ms "
                  f"in {time.monotonic() - started:.1f} s")
        else:
            result = closed_loop(proxy.port, link if args.scenario == "link" else new, args.concurrency)
            print(f"{args.scenario}: {result.completed} orders, {result.rps:.0f}/s, "
                  f"p50 {percentile(result.latencies, 50) * 1000:.1f} ms, p99 {percentile(result.latencies, 99) * 1000:.1f} ms"
                  + (f", errors {result.errors[:2]}" if result.errors else ""))
        time.sleep(0.5)
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        _, err = spy.communicate(timeout=60)
        spy = None
        if not raw.exists():
            print(f"py-spy wrote nothing: {err[-2000:]}", file=sys.stderr)
            return 1
        print("\n".join(summarize(raw, args.top)))
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        world.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
