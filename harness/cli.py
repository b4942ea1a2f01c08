"""`eprox-harness`: `up` runs a harness until stopped and announces it in a ready file; `demo` runs the
three scripted flows and exits 0 only when every check passed; `scenario` checks or runs a scenario file;
`proxy` serves the real proxy and operates its delivery outbox (proxy/cli.py); `check-callbacks` tells a
registry team whether their callback endpoints answer as ePROX expects (fake_registry/checker.py)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Sequence

from eprom_protocol.national_id import mask, mask_in_text
from proxy.cli import register as register_proxy_commands
from proxy.privacy import redact_handlers

from .config import ConfigError, HarnessConfig, example_config, load_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_stdout()
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    redact_handlers()  # what the servers log (werkzeug quotes a bad request line whole) masked as in production
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eprox-harness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start fake ePROM, ePROX and the registries; run until SIGINT/SIGTERM")
    source = up.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="topology file (YAML or JSON); see `example-config`")
    source.add_argument("--scenario", metavar="FILE",
                        help="scenario file: its topology, its patients in fake ePROM, its orders as the clock "
                             "reaches them")
    up.add_argument("--ready-file", metavar="PATH",
                    help="once every server serves, write its URLs and keys here as JSON (removed on exit)")
    up.add_argument("--transcript", action="store_true", help="print every message between the servers as it happens")
    up.set_defaults(run=cmd_up)

    demo = commands.add_parser("demo", help="run the three scripted flows on a fresh harness and judge them")
    demo.add_argument("--seed", type=int, default=0, help="seeds ids and patients (default 0)")
    demo.set_defaults(run=cmd_demo)

    scenario = commands.add_parser("scenario", help="check or run a scenario file (see scenarios/)")
    scenario_commands = scenario.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    check = scenario_commands.add_parser("check", help="validate a scenario file and its patients; start nothing")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(run=cmd_scenario_check)
    run = scenario_commands.add_parser("run", help="run a scenario until its `until`, print the transcript and "
                                                   "judge its expectations (exit 0 only when all hold)")
    run.add_argument("file", metavar="FILE")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.set_defaults(run=cmd_scenario_run)

    register_proxy_commands(commands)  # eprox-harness proxy serve|deliveries|replay|...

    checker = commands.add_parser(
        "check-callbacks", help="tell a registry team whether their callback endpoints answer ePROX as they must",
        description="PUTs the callbacks ePROX sends a registry (statuses, an answer and the same answer again, "
                    "an expiry, a message status, and forged ones with another apiKey or none) to "
                    "{URL}/api/PromsFormOrder and {URL}/api/MessageToCitizen, and judges every answer as ePROX "
                    "does. Exit 0 only when all pass. The callbacks carry a synthetic answer to RAND-12 and no "
                    "national id.")
    checker.add_argument("url", metavar="URL", help="the registry's callback base URL (its ApiBaseUrl at ePROX)")
    checker.add_argument("--api-key", required=True, help="the registry's apiKey at ePROX (callbacks carry it)")
    checker.add_argument("--order-id", action="append", default=[], metavar="ID",
                         help="an order id your system holds (from an order it placed through ePROX); up to "
                              "three: the answered, the expired and the failed order. Default: made up")
    checker.add_argument("--message-id", metavar="ID", help="a message id your system holds (default: made up)")
    checker.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                         help="how long to wait for each answer (default: ePROX's, 15)")
    checker.add_argument("--seed", type=int, default=0, help="seeds the made-up ids and the answer (default 0)")
    checker.add_argument("--json", action="store_true", help="print the results as JSON")
    checker.set_defaults(run=cmd_check_callbacks)

    example = commands.add_parser("example-config", help="print a configuration file with every setting")
    example.set_defaults(run=lambda args: print(example_config(), end="") or EXIT_OK)
    return parser


def _tolerant_stdout() -> None:
    """Arrows and masked ids must never crash a run on a terminal that is not UTF-8."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass


def _say(text: str = "") -> None:
    print(text, flush=True)


def _complain(text: str) -> None:
    """An error on stderr; a national id in it (from a file, an argument or an answer) masked."""
    print(mask_in_text(text), file=sys.stderr, flush=True)


def _load(path: str | None) -> HarnessConfig:
    return load_config(path) if path else HarnessConfig()


# --- up ---------------------------------------------------------------------------------

def cmd_up(args: argparse.Namespace) -> int:
    from .topology import Harness

    scenario = None
    try:
        if getattr(args, "scenario", None):
            from .scenario import load_scenario

            scenario = load_scenario(args.scenario)
            config = scenario.config
        else:
            config = _load(args.config)
    except ConfigError as err:
        what = "scenario" if scenario is not None or getattr(args, "scenario", None) else "configuration"
        _complain(f"eprox-harness up: the {what} is not usable:\n{err}")
        return EXIT_USAGE
    ready = Path(args.ready_file) if args.ready_file else None
    if ready is not None and (problem := _clear_ready_file(ready)):
        _complain(f"eprox-harness up: --ready-file {ready}: {problem}")
        return EXIT_USAGE

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    harness = Harness(config, pump=True)
    session = None
    try:
        try:
            harness.start()
        except Exception as err:
            _complain(f"eprox-harness up: could not start: {type(err).__name__}: {err}")
            return EXIT_FAILED
        info = harness.info()
        if args.transcript:
            harness.transcript.subscribe(_say)
        if scenario is not None:
            from .scenario import ScenarioSession

            session = ScenarioSession(harness, scenario)
            try:
                session.install()
            except ConfigError as err:
                _complain(f"eprox-harness up: the scenario is not usable:\n{err}")
                return EXIT_USAGE
            except Exception as err:  # a server failed to take the scenario: said in one line, as at the start
                _complain(f"eprox-harness up: could not load the scenario: {type(err).__name__}: {err}")
                return EXIT_FAILED
            harness.timeline.settle()  # the orders due at the start have been placed before anyone is told
            info["patients"] = session.patient_list()
        if ready is not None:
            try:
                write_ready_file(ready, info)
            except OSError as err:  # the folder went away or filled up since the start
                _complain(f"eprox-harness up: could not write the ready file {ready}: {err.strerror or err}")
                return EXIT_FAILED
        _announce(info, ready)
        while not stop.wait(0.5):  # the signal handler sets the event; the timeout only bounds the wait
            pass
        _say("eprox-harness: stopping")
    finally:
        if session is not None:
            session.close()
        harness.stop()
        if ready is not None:
            ready.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say("eprox-harness: stopped")
    return EXIT_OK


def _clear_ready_file(path: Path) -> str | None:
    """Delete a stale ready file (it would announce servers that are gone) and make sure one can be written
    there, before anything starts; else what is wrong."""
    if path.is_dir():
        return "is a folder; give a file's path"
    try:
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return f"cannot be written there ({err.strerror or err})"
    return None


def write_ready_file(path: Path, info: dict) -> None:
    """Write to a temporary file beside PATH and rename it, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _announce(info: dict, ready: Path | None) -> None:
    rows = [("eprom", info["eprom"]["url"], f"ePROX's key at ePROM: {info['eprom']['apiKey']}"),
            ("proxy", info["proxy"]["url"], "registries order here")]
    rows += [(r["name"], r["url"], f"key at ePROX: {r['apiKey']}") for r in info["registries"]]
    width = max(len(name) for name, _, _ in rows)
    _say("eprox-harness: every server serves")
    for name, url, note in rows:
        _say(f"  {name:<{width}}  {url}  ({note})")
    for patient in info.get("patients", []):
        _say(f"  patient {patient['ref']}: {mask(patient['nationalId'])}")
    if ready is not None:
        _say(f"  ready file: {ready}")
    _say("Stop with Ctrl-C or SIGTERM.")


# --- demo -------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .topology import Harness

    config = HarnessConfig(seed=args.seed)
    _say(f"eprox-harness demo (seed {args.seed}): fake ePROM, ePROX, registry-a and registry-b; "
         "simulated time starts at " + config.start.strftime("%Y-%m-%d %H:%M:%SZ"))
    try:
        harness = Harness(config, pump=False).start()
    except Exception as err:
        _complain(f"eprox-harness demo: could not start the harness: {type(err).__name__}: {err}")
        return EXIT_FAILED
    try:
        flows = run_demo(harness, _say, seed=args.seed)
    finally:
        harness.stop()
    return EXIT_OK if flows and all(f.passed for f in flows) else EXIT_FAILED


# --- check-callbacks --------------------------------------------------------------------

def cmd_check_callbacks(args: argparse.Namespace) -> int:
    from fake_registry.checker import DEFAULT_TIMEOUT, Verdict, passed, run_checks, usage_problems

    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    problems = usage_problems(args.url, args.api_key, args.order_id, args.message_id, timeout)
    if problems:
        _complain("eprox-harness check-callbacks: " + "; ".join(problems))
        return EXIT_USAGE
    url = mask_in_text(args.url)  # a national id in a path
    if not args.json:
        _say(f"Checking the callback endpoints under {url} as ePROX calls them (timeout {timeout:g} s):")
    show = (lambda result: None) if args.json else (
        lambda r: _say(f"{r.verdict.value:<5} {r.check.name:<20} {r.check.what}\n      {r.reason}"))
    ids, results = run_checks(args.url, args.api_key, order_ids=args.order_id, message_id=args.message_id,
                              timeout=timeout, seed=args.seed, on_result=show)
    ok = passed(results)
    if args.json:
        print(json.dumps({"url": url, "passed": ok, "orderIds": ids.orders,
                          "messageId": ids.message, "madeUp": sorted(ids.made_up),
                          "results": [r.as_json() for r in results]}, indent=2))
        return EXIT_OK if ok else EXIT_FAILED
    count = sum(r.verdict is Verdict.PASSED for r in results)
    _say(f"{count} of {len(results)} checks passed.")
    if ids.made_up and any(r.verdict is not Verdict.PASSED and r.check.genuine and r.status is not None
                           for r in results):  # refused, not unreachable
        _say("The checker made up the order and message ids; if your system refuses callbacks for ids it does "
             "not hold, give it some that it holds: --order-id ID (up to three times) --message-id ID.")
    return EXIT_OK if ok else EXIT_FAILED


# --- scenario ---------------------------------------------------------------------------

def cmd_scenario_check(args: argparse.Namespace) -> int:
    from .scenario import check_scenario, load_scenario

    try:
        scenario = load_scenario(args.file)
        check_scenario(scenario)
    except ConfigError as err:
        _complain(f"eprox-harness scenario check: the scenario is not usable:\n{err}")
        return EXIT_USAGE
    _say(f"{args.file}: a usable scenario ({len(scenario.patients)} patients, {len(scenario.script)} scripted "
         f"orders, {len(scenario.expectations)} expectations)")
    return EXIT_OK


def cmd_scenario_run(args: argparse.Namespace) -> int:
    from .scenario import load_scenario, run_scenario

    try:
        scenario = load_scenario(args.file).with_seed(args.seed)
    except ConfigError as err:
        _complain(f"eprox-harness scenario run: the scenario is not usable:\n{err}")
        return EXIT_USAGE
    try:
        passed = run_scenario(scenario, lambda line: _say(mask_in_text(line)))  # ids in names, descriptions
    except ConfigError as err:  # a patient the fake ePROM refused
        _complain(f"eprox-harness scenario run: the scenario is not usable:\n{err}")
        return EXIT_USAGE
    except Exception as err:
        _complain(f"eprox-harness scenario run: could not run: {type(err).__name__}: {err}")
        return EXIT_FAILED
    return EXIT_OK if passed else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
