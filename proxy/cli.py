"""The proxy's operator commands: serve it, and look into and replay its delivery outbox. Available as
`python -m proxy COMMAND` and, through register(), as `eprox-harness proxy COMMAND`.

The outbox commands work on the proxy's database directly, so they work whether the proxy runs or not;
a running proxy picks up replayed deliveries within a second or so. They never create or change a database
that is not the proxy's, and listing writes nothing into it."""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path
from typing import Sequence

from .config import DATABASE_NAME, ProxyConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STATES = ("pending", "failed", "dead", "done")


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `proxy` command group (serve, deliveries, replay, check-config, example-config) to an
    argparse subparsers object. Each command sets `run`: call `args.run(args)` for the exit code."""
    group = subparsers.add_parser("proxy", help="run the ePROX proxy for real, and operate its delivery outbox",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(group.add_subparsers(dest="proxy_command", required=True, metavar="PROXY_COMMAND"))
    return group


def add_commands(commands: "argparse._SubParsersAction") -> None:
    serve = commands.add_parser("serve", help="serve the proxy on the system clock (one process; "
                                              "for several use gunicorn, see docs/PROXY.md)")
    serve.add_argument("--config", metavar="FILE", help="configuration file (default: $EPROX_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000; 0: any free one)")
    serve.add_argument("--ready-file", metavar="PATH", help="once serving, write {\"url\", \"pid\"} here as JSON")
    serve.set_defaults(run=cmd_serve)

    listing = commands.add_parser("deliveries", help="list the callbacks in the outbox")
    _database_options(listing)
    listing.add_argument("--state", choices=STATES,
                         help="pending (not yet delivered), failed (pending after a failed attempt), dead "
                              "(given up, replayable) or done; default: all but done")
    listing.add_argument("--registry", metavar="NAME", help="only those to this registry")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=cmd_deliveries)

    replay = commands.add_parser("replay", help="queue dead deliveries again, due at once, same X-Delivery-Id")
    _database_options(replay)
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", dest="ids", metavar="ID", nargs="+", action="extend", help="these deliveries")
    which.add_argument("--all-dead", action="store_true", help="every dead delivery")
    replay.set_defaults(run=cmd_replay)

    check = commands.add_parser("check-config", help="check a configuration file and the environment")
    check.add_argument("--config", metavar="FILE", help="configuration file (default: $EPROX_CONFIG)")
    check.set_defaults(run=cmd_check_config)

    example = commands.add_parser("example-config", help="print a configuration file with every setting")
    example.set_defaults(run=cmd_example_config)


def _database_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("which proxy (first given wins; default $EPROX_DATABASE, $EPROX_CONFIG)")
    where.add_argument("--database", metavar="FILE", help="the proxy's SQLite database")
    where.add_argument("--state-dir", metavar="DIR", help=f"a state directory holding {DATABASE_NAME}")
    where.add_argument("--config", metavar="FILE", help="the proxy's configuration file (its `database`)")


def _port(text: str) -> int:
    """A port number, or argparse's usage error: the socket layer would take 99999 as 34463 (modulo 65536)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


class UsageError(Exception):
    pass


def database_path(args: argparse.Namespace, env=os.environ) -> Path:
    """Where the proxy's database is, from the options, else the environment; it must exist."""
    if getattr(args, "database", None):
        path = Path(args.database)
    elif getattr(args, "state_dir", None):
        path = Path(args.state_dir) / DATABASE_NAME
    elif getattr(args, "config", None) or env.get("EPROX_CONFIG"):
        path = _database_in(Path(args.config or env["EPROX_CONFIG"]), env)
    elif env.get("EPROX_DATABASE"):  # without a configuration file, relative to here, as the proxy takes it
        path = Path(env["EPROX_DATABASE"])
    else:
        raise UsageError("say which proxy: --database FILE, --state-dir DIR or --config FILE "
                         "(or set EPROX_DATABASE or EPROX_CONFIG)")
    if not path.is_file():
        raise UsageError(f"no proxy database at {path}")
    return path


def _database_in(config: Path, env) -> Path:
    """Where the proxy configured by this file and the environment keeps its database: as the proxy itself
    finds it (EPROX_DATABASE over the file's `database`, relative to the file)."""
    from .settings import ConfigError, database_setting
    try:
        return database_setting(config, env)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def _store(args: argparse.Namespace, *, write: bool):
    """The proxy's store, only on a file that is the proxy's database: ProxyStore would make any SQLite file
    (or an empty one) a proxy database. Listing opens it read-only, so it also works where the database
    cannot be written (a read-only file system, a copy); replay needs to write."""
    from .settings import not_a_proxy_database, read_only_uri, unwritable
    from .store import ProxyStore
    path = database_path(args)
    if problem := not_a_proxy_database(path):
        raise UsageError(f"{path}: {problem}")
    if write and (problem := unwritable(path)):
        raise UsageError(f"{path}: {problem}; replay needs to write it")
    try:
        return ProxyStore(path) if write else ProxyStore(read_only_uri(path), read_only=True)
    except (OSError, sqlite3.Error) as err:
        raise UsageError(f"{path}: cannot be opened ({err})") from None


def _run(fn, args: argparse.Namespace) -> int:
    try:
        return fn(args)
    except UsageError as err:
        print(f"proxy: {err}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.Error as err:  # e.g. locked for longer than the store waits
        older = " (an older proxy's database is brought up to date when the proxy starts)" \
            if "no such" in str(err) else ""
        print(f"proxy: the database failed: {err}{older}", file=sys.stderr)
        return EXIT_FAILED


def _waits_behind(blocker: str, state: str) -> str:
    return f"waits behind {state} {blocker}" if state != "pending" else f"waits behind {blocker}"


def cmd_deliveries(args: argparse.Namespace) -> int:
    return _run(_deliveries, args)


def _deliveries(args: argparse.Namespace) -> int:
    store = _store(args, write=False)
    try:
        if args.state:
            rows = store.deliveries(args.state, args.registry)
        else:
            rows = [d for d in store.deliveries(None, args.registry) if d.state != "done"]
        behind = store.waiting_behind()
    finally:
        store.close()
    if args.json:
        print(json.dumps([{**d.as_json(), "waitsBehind": behind[d.id][0] if d.id in behind else None}
                          for d in rows], indent=2))
        return EXIT_OK
    if not rows:
        print("no deliveries" + (f" in state {args.state}" if args.state else " waiting or dead"))
        return EXIT_OK
    header = ("ID", "REGISTRY", "STATUS", "STATE", "ATTEMPTS", "NEXT ATTEMPT (UTC)", "LAST ERROR")
    table = [header] + [
        (d.id, d.registry, d.status, "failed" if d.failed else d.state, str(d.attempts),
         d.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if d.state == "pending" else "-",
         _waits_behind(*behind[d.id]) if d.id in behind else (d.last_error or "-")[:60])
        for d in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    return _run(_replay, args)


def _replay(args: argparse.Namespace) -> int:
    store = _store(args, write=True)
    try:
        if args.all_dead:
            count = store.revive(None)
            print(f"replaying {count} dead delivery(ies)")
            return EXIT_OK
        ids = list(dict.fromkeys(args.ids))
        known = {d.id: d for d in store.deliveries(ids=ids)}
        count = store.revive(ids)
    finally:
        store.close()
    print(f"replaying {count} delivery(ies)")
    problems = 0
    for delivery_id in ids:
        found = known.get(delivery_id)
        if found is None:
            print(f"  {delivery_id}: no such delivery", file=sys.stderr)
            problems += 1
        elif found.state != "dead":
            print(f"  {delivery_id}: is {found.state}, not dead: left as it is", file=sys.stderr)
            problems += 1
        elif found.body is None:
            print(f"  {delivery_id}: its order's lifetime ended, nothing left to send", file=sys.stderr)
            problems += 1
    return EXIT_FAILED if problems else EXIT_OK


def usable_config(path: str | None) -> ProxyConfig:
    """The configuration from `path` (or $EPROX_CONFIG) and the environment, as check-config checks it and as
    the proxy needs it to start: the settings, and a database location it can use."""
    from .settings import ConfigError, load_checked
    try:
        return load_checked(path)
    except ConfigError as err:
        raise UsageError(f"the configuration is not usable:\n{err}") from None


def cmd_check_config(args: argparse.Namespace) -> int:
    return _run(_check_config, args)


def _check_config(args: argparse.Namespace) -> int:
    config = usable_config(args.config)
    print(f"ePROM: {config.eprom_url}")
    print(f"database: {config.database_path}")
    print(f"lifetime: {config.lifetime / timedelta(days=1):g} days; delivery timeout {config.delivery_timeout:g} s, "
          f"{config.lane_width} in flight per registry")
    for registry in config.registries:
        forms = "every form" if registry.allowed_forms is None else f"{len(registry.allowed_forms)} form(s)"
        print(f"registry {registry.name}: callbacks to {registry.api_base_url}, {forms}")
    return EXIT_OK


def cmd_example_config(args: argparse.Namespace) -> int:
    from .settings import EXAMPLE
    print(EXAMPLE, end="")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    return _run(_serve, args)


def _serve(args: argparse.Namespace) -> int:
    from .production import StartupError, serve
    config = usable_config(args.config)
    try:
        return serve(config, args.host, args.port, Path(args.ready_file) if args.ready_file else None)
    except StartupError as err:
        print(f"proxy: {err}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(parser.add_subparsers(dest="proxy_command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.run(args)
